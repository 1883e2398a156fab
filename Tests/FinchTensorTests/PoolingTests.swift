import XCTest
@testable import FinchTensor

/// PyTorch's pooling output length, restated here so the test does not lean on the library's copy.
private func outLen(_ n: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int, _ ceil: Bool) -> Int {
    let span = n + 2 * p - d * (k - 1) - 1
    var o = Int((Double(span) / Double(s)).rounded(ceil ? .up : .down)) + 1
    if ceil && (o - 1) * s >= n + p { o -= 1 }
    return o
}

private func naiveMaxPool(_ x: Tensor, k: (Int, Int), s: (Int, Int), p: (Int, Int), d: (Int, Int),
                          ceil: Bool) -> (shape: [Int], values: [Float]) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = outLen(h, k.0, s.0, p.0, d.0, ceil), wo = outLen(w, k.1, s.1, p.1, d.1, ceil)
    var out = [Float]()
    for a in 0..<n {
        for b in 0..<c {
            for oh in 0..<ho {
                for ow in 0..<wo {
                    var m = -Float.infinity
                    for i in 0..<k.0 {
                        for j in 0..<k.1 {
                            let ih = oh * s.0 - p.0 + i * d.0, iw = ow * s.1 - p.1 + j * d.1
                            if ih >= 0 && ih < h && iw >= 0 && iw < w { m = max(m, x[a, b, ih, iw]) }
                        }
                    }
                    out.append(m)
                }
            }
        }
    }
    return ([n, c, ho, wo], out)
}

private func naiveAvgPool(_ x: Tensor, k: (Int, Int), s: (Int, Int), p: (Int, Int), ceil: Bool,
                          includePad: Bool) -> (shape: [Int], values: [Float]) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = outLen(h, k.0, s.0, p.0, 1, ceil), wo = outLen(w, k.1, s.1, p.1, 1, ceil)
    var out = [Float]()
    for a in 0..<n {
        for b in 0..<c {
            for oh in 0..<ho {
                for ow in 0..<wo {
                    // Window cells inside the padded input count for count_include_pad; real cells always.
                    var sum = 0.0, padded = 0, real = 0
                    for i in 0..<k.0 {
                        for j in 0..<k.1 {
                            let ih = oh * s.0 - p.0 + i, iw = ow * s.1 - p.1 + j
                            guard ih < h + p.0 && iw < w + p.1 else { continue }
                            padded += 1
                            if ih >= 0 && ih < h && iw >= 0 && iw < w {
                                real += 1
                                sum += Double(x[a, b, ih, iw])
                            }
                        }
                    }
                    out.append(Float(sum / Double(includePad ? padded : real)))
                }
            }
        }
    }
    return ([n, c, ho, wo], out)
}

private func naiveAdaptiveAvg(_ x: Tensor, _ size: (Int, Int)) -> [Float] {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var out = [Float]()
    for a in 0..<n {
        for b in 0..<c {
            for oh in 0..<size.0 {
                for ow in 0..<size.1 {
                    let h0 = Int((Double(oh * h) / Double(size.0)).rounded(.down))
                    let h1 = Int((Double((oh + 1) * h) / Double(size.0)).rounded(.up))
                    let w0 = Int((Double(ow * w) / Double(size.1)).rounded(.down))
                    let w1 = Int((Double((ow + 1) * w) / Double(size.1)).rounded(.up))
                    var sum = 0.0
                    for i in h0..<h1 { for j in w0..<w1 { sum += Double(x[a, b, i, j]) } }
                    out.append(Float(sum / Double((h1 - h0) * (w1 - w0))))
                }
            }
        }
    }
    return out
}

final class PoolingTests: XCTestCase {
    /// Distinct values at least 0.05 apart, so a finite-difference step (0.01) never changes a window's argmax.
    private func spacedTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = TestRNG(seed)
        var values = (0..<Shape.count(shape)).map { Float($0) * 0.05 - 1 }
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            values.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return Tensor(values, shape: shape, requiresGrad: true)
    }

    func testOutputSizes() {
        XCTAssertEqual(poolOutputSize(7, kernel: 3, stride: 2, pad: 1, dilation: 1, ceilMode: false), 4)
        XCTAssertEqual(poolOutputSize(6, kernel: 3, stride: 2, pad: 0, dilation: 1, ceilMode: false), 2)
        XCTAssertEqual(poolOutputSize(6, kernel: 3, stride: 2, pad: 0, dilation: 1, ceilMode: true), 3)
        // The last ceil-mode window would start in the right padding, so it is dropped.
        XCTAssertEqual(poolOutputSize(5, kernel: 2, stride: 2, pad: 1, dilation: 1, ceilMode: true), 3)
        XCTAssertEqual(poolOutputSize(8, kernel: 3, stride: 1, pad: 0, dilation: 2, ceilMode: false), 4)
    }

    func testMaxPool() {
        let configs: [(k: (Int, Int), s: (Int, Int), p: (Int, Int), d: (Int, Int), ceil: Bool, h: Int, w: Int)] = [
            ((3, 3), (2, 2), (1, 1), (1, 1), false, 7, 7),   // ResNet stem
            ((3, 3), (2, 2), (0, 0), (1, 1), true, 6, 6),    // ceil mode adds a clipped window
            ((2, 2), (2, 2), (1, 1), (1, 1), true, 5, 5),    // ceil mode with padding (last window dropped)
            ((2, 3), (1, 2), (1, 1), (2, 1), false, 6, 7),   // dilation, rectangular
            ((2, 2), (2, 2), (0, 0), (1, 1), false, 4, 5),
        ]
        for (n, cfg) in configs.enumerated() {
            let x = spacedTensor([2, 2, cfg.h, cfg.w], seed: UInt64(n))
            let y = maxPool2d(x, kernel: cfg.k, stride: cfg.s, padding: cfg.p, dilation: cfg.d, ceilMode: cfg.ceil)
            let ref = naiveMaxPool(x, k: cfg.k, s: cfg.s, p: cfg.p, d: cfg.d, ceil: cfg.ceil)
            XCTAssertEqual(y.shape, ref.shape, "config \(n)")
            assertClose(y.scalars, ref.values, atol: 0, rtol: 0)
            assertGradients([x]) { t in
                maxPool2d(t[0], kernel: cfg.k, stride: cfg.s, padding: cfg.p, dilation: cfg.d, ceilMode: cfg.ceil)
            }
        }
    }

    /// 3×3 stride-2 pooling without gradients goes through the AVX-512 kernel (where the CPU has it):
    /// against the definition and bit for bit against the Swift loop, including NaNs and zeros of
    /// both signs (a NaN wins, ties keep the first maximum), ceil mode, and rows of one and of
    /// several vectors with a partial one.
    func testMaxPool3x3Stride2Kernel() {
        defer { MaxPoolKernel.allowWide = true }
        let configs: [(p: (Int, Int), ceil: Bool, h: Int, w: Int)] = [
            ((1, 1), false, 7, 7), ((0, 0), true, 6, 6), ((1, 1), false, 9, 37), ((1, 0), true, 8, 70),
        ]
        for (n, cfg) in configs.enumerated() {
            for withNaN in [false, true] {
                var values = spacedTensor([2, 3, cfg.h, cfg.w], seed: UInt64(20 + n)).scalars
                for k in stride(from: 7, to: values.count, by: 11) { values[k] = k % 2 == 0 ? 0 : -0.0 }
                if withNaN { for k in stride(from: 5, to: values.count, by: 23) { values[k] = .nan } }
                // Windows of −∞ only keep the index of their first element inside the plane.
                for k in 0..<(3 * cfg.w) { values[k] = -.infinity }
                let x = Tensor(values, shape: [2, 3, cfg.h, cfg.w])
                func pool(_ wide: Bool) -> Tensor {
                    MaxPoolKernel.allowWide = wide
                    return noGrad { maxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: cfg.p, ceilMode: cfg.ceil) }
                }
                let fast = pool(true), loop = pool(false)
                XCTAssertEqual(fast.scalars.map(\.bitPattern), loop.scalars.map(\.bitPattern), "config \(n), NaN \(withNaN)")
                // With gradients the kernel also records each output's argmax: the same positions.
                func gradient(_ wide: Bool) -> (y: [UInt32], dx: [UInt32]) {
                    MaxPoolKernel.allowWide = wide
                    let xg = Tensor(values, shape: x.shape, requiresGrad: true)
                    let y = maxPool2d(xg, kernel: (3, 3), stride: (2, 2), padding: cfg.p, ceilMode: cfg.ceil)
                    y.backward(Tensor((0..<y.count).map { Float($0 % 7 + 1) }, shape: y.shape))
                    return (y.scalars.map(\.bitPattern), xg.grad!.scalars.map(\.bitPattern))
                }
                let (gFast, gLoop) = (gradient(true), gradient(false))
                XCTAssertEqual(gFast.y, gLoop.y, "config \(n), NaN \(withNaN)")
                XCTAssertEqual(gFast.dx, gLoop.dx, "config \(n), NaN \(withNaN): gradient")
                XCTAssertTrue(gFast.dx.contains { $0 != 0 })
                if withNaN {
                    XCTAssertTrue(fast.scalars.contains { $0.isNaN }, "config \(n) should see a NaN")
                } else {
                    let ref = naiveMaxPool(x, k: (3, 3), s: (2, 2), p: cfg.p, d: (1, 1), ceil: cfg.ceil)
                    XCTAssertEqual(fast.shape, ref.shape, "config \(n)")
                    XCTAssertEqual(fast.scalars, ref.values, "config \(n)")
                }
            }
        }
    }

    func testMaxPoolGradientGoesToFirstMaximum() {
        let x = Tensor([1, 3, 3, 2], shape: [1, 1, 2, 2], requiresGrad: true)
        maxPool2d(x, kernel: (2, 2)).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [0, 1, 0, 0])
        XCTAssertEqual(maxPool2d(x, kernel: (2, 2)).shape, [1, 1, 1, 1])
    }

    func testMaxPoolPropagatesNaN() {
        let x = Tensor([1, .nan, 5, 2, 0, 1, 3, 4], shape: [1, 1, 2, 4], requiresGrad: true)
        let y = maxPool2d(x, kernel: (2, 2))
        XCTAssertTrue(y.scalars[0].isNaN)
        XCTAssertEqual(y.scalars[1], 5)
        y.sum().backward()
        XCTAssertEqual(x.grad?.scalars, [0, 1, 1, 0, 0, 0, 0, 0])
    }

    func testAvgPool() {
        let configs: [(k: (Int, Int), s: (Int, Int), p: (Int, Int), ceil: Bool, inc: Bool, h: Int, w: Int)] = [
            ((3, 3), (2, 2), (1, 1), false, true, 7, 7),
            ((3, 3), (2, 2), (1, 1), false, false, 7, 7),
            ((3, 3), (2, 2), (0, 0), true, true, 6, 6),
            ((2, 2), (2, 2), (1, 1), true, true, 6, 5),
            ((3, 2), (2, 2), (1, 1), true, false, 6, 5),
            ((2, 2), (2, 2), (0, 0), false, true, 4, 4),
        ]
        var rng = TestRNG(40)
        for (n, cfg) in configs.enumerated() {
            let x = rng.tensor([2, 3, cfg.h, cfg.w])
            let y = avgPool2d(x, kernel: cfg.k, stride: cfg.s, padding: cfg.p, ceilMode: cfg.ceil,
                              countIncludePad: cfg.inc)
            let ref = naiveAvgPool(x, k: cfg.k, s: cfg.s, p: cfg.p, ceil: cfg.ceil, includePad: cfg.inc)
            XCTAssertEqual(y.shape, ref.shape, "config \(n)")
            assertClose(y.scalars, ref.values)
            assertGradients([x]) { t in
                avgPool2d(t[0], kernel: cfg.k, stride: cfg.s, padding: cfg.p, ceilMode: cfg.ceil,
                          countIncludePad: cfg.inc)
            }
        }
    }

    func testAvgPoolHandComputed() {
        let x = Tensor((1...9).map(Float.init), shape: [1, 1, 3, 3])
        // Ceil mode: the clipped windows divide by their clipped size.
        XCTAssertEqual(avgPool2d(x, kernel: (2, 2), ceilMode: true).scalars, [3, 4.5, 7.5, 9])
        let ones = Tensor.ones([1, 1, 3, 3])
        // Corner window of k3 p1: 4 real cells of 9.
        XCTAssertEqual(avgPool2d(ones, kernel: (3, 3), stride: (2, 2), padding: (1, 1)).scalars,
                       [Float](repeating: 4.0 / 9.0, count: 4))
        XCTAssertEqual(avgPool2d(ones, kernel: (3, 3), stride: (2, 2), padding: (1, 1), countIncludePad: false).scalars,
                       [1, 1, 1, 1])
    }

    func testAdaptiveAvgPool() {
        var rng = TestRNG(50)
        let cases: [((Int, Int), (Int, Int))] = [((5, 5), (1, 1)), ((5, 5), (3, 3)), ((7, 6), (3, 4)),
                                                 ((4, 4), (2, 2)), ((3, 2), (5, 3))]
        for (inSize, outSize) in cases {
            let x = rng.tensor([2, 3, inSize.0, inSize.1])
            let y = adaptiveAvgPool2d(x, outputSize: outSize)
            XCTAssertEqual(y.shape, [2, 3, outSize.0, outSize.1])
            assertClose(y.scalars, naiveAdaptiveAvg(x, outSize))
            assertGradients([x]) { t in adaptiveAvgPool2d(t[0], outputSize: outSize) }
        }
        // Global pooling over a plane larger than one SIMD stride.
        let big = rng.tensor([2, 2, 9, 11])
        assertClose(adaptiveAvgPool2d(big, outputSize: (1, 1)).scalars, naiveAdaptiveAvg(big, (1, 1)))
    }

    func testNonContiguousInput() {
        var rng = TestRNG(60)
        let base = rng.tensor([2, 5, 3, 5])
        let x = base.permuted(0, 3, 2, 1)   // [2, 5, 3, 5] as a strided view
        assertClose(maxPool2d(x, kernel: (2, 2), stride: (1, 1)).scalars,
                    naiveMaxPool(x.copy(), k: (2, 2), s: (1, 1), p: (0, 0), d: (1, 1), ceil: false).values)
        assertClose(adaptiveAvgPool2d(x, outputSize: (1, 1)).scalars, naiveAdaptiveAvg(x.copy(), (1, 1)))
    }
}
