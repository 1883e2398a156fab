import XCTest
import Foundation
import CFinchKernels
@testable import FinchTensor

/// Every kernel with more than one path (KernelPath: generic, avx2, avx512) against the generic one,
/// on every path this CPU runs, on shapes that leave partial vectors (of 8 and 16 lanes) and partial
/// channel blocks and tiles, forward and backward through the public ops.
///
/// Bounds, with ε = 2⁻²⁴ (float32's unit roundoff):
/// - A sum of K products computed in any order, with or without FMA, is within γ_K·Σ|terms| ≈ K·ε·Σ|terms|
///   of the exact sum, so two paths are within 2·K·ε·A, where A = Σ|terms| is computed by running the
///   op's generic path on |inputs| (and |upstream gradient|): convolution and its gradients are linear
///   in each argument, so that run sums the absolute values of exactly the terms each output adds.
///   Winograd's transforms add and scale before and after the products; F(2×2, 3×3) is given 4× that
///   bound and F(4×4, 3×3) 32× (issue 27: 8× F(2×2)'s rounding error). A wrong tap, channel or
///   edge is off by about A/K, 20× or more beyond every bound used here.
/// - exp, SiLU, sigmoid: every path is within 2 ulp of exp and of the quotient, so paths agree within
///   8ε relative (SiLU's backward: 16ε of |g|·s·(1 + |x|·(1 − s)), its terms before they cancel).
/// - softmax over r keys: the row sum adds r terms, so (8 + 2r)·ε relative per element; log-softmax
///   the same in absolute terms, plus 8ε relative.
/// - BatchNorm: the statistics are sums over the K = N·H·W values of a channel, so the normalised value
///   x̂ = (x − μ)/σ moves by about K·ε·(|x̂| + |μ|/σ + 1) between orders; 4× that, times |γ|, bounds the
///   output; the gradients are sums of the same length over the same terms.
/// - Max pooling and the Winograd F(2×2) transforms make the same comparisons and operations on every
///   path: equal bits.
final class KernelPathTests: XCTestCase {
    static let eps: Float = 1.0 / Float(1 << 24)

    override func tearDown() {
        WinogradConv.alwaysLargeTiles = false
        super.tearDown()
    }

    /// Outputs (forward results and gradients) of one op, by name.
    typealias Outputs = [(name: String, values: [Float])]

    /// `run` on every path this CPU has, then each path's outputs against the generic path's within
    /// `tolerance(output index, element index, generic value)`. Returns the worst |Δ| ÷ tolerance.
    @discardableResult
    func assertPathsAgree(_ label: String, run: () -> Outputs,
                          tolerance: (Int, Int, Float) -> Float, file: StaticString = #filePath, line: UInt = #line) -> Float {
        let reference = KernelPath.with(.generic) { run() }
        var worst: Float = 0
        for path in KernelPath.supported where path != .generic {
            let got = KernelPath.with(path) { run() }
            XCTAssertEqual(got.map(\.name), reference.map(\.name), file: file, line: line)
            for (o, (ref, ours)) in zip(reference, got).enumerated() {
                XCTAssertEqual(ours.values.count, ref.values.count, "\(label) \(ref.name) on \(path)", file: file, line: line)
                for (i, (r, v)) in zip(ref.values, ours.values).enumerated() {
                    if r == v || (r.isNaN && v.isNaN) { continue }
                    let tol = tolerance(o, i, r)
                    let d = abs(r - v)
                    worst = max(worst, tol > 0 ? d / tol : (d == 0 ? 0 : .infinity))
                    if !(d <= tol) {
                        XCTFail("\(label) \(ref.name)[\(i)] on \(path): \(v), generic \(r), |Δ| \(d) > \(tol)", file: file, line: line)
                        break
                    }
                }
            }
        }
        return worst
    }

    // MARK: - switching

    func testPathNamesAndSwitching() {
        XCTAssertEqual(KernelPath.allCases.map(\.name), ["generic", "avx2", "avx512"])
        for path in KernelPath.allCases { XCTAssertEqual(KernelPath(name: path.name), path) }
        for bad in ["", "AVX512", "avx-512", " avx2", "avx2 ", "sse", "avx512f", "native"] {
            XCTAssertNil(KernelPath(name: bad), bad)
        }
        XCTAssertEqual(KernelPath.supported.first, .generic)
        XCTAssertEqual(KernelPath.supported.last, KernelPath.best)
        let before = KernelPath.active
        for path in KernelPath.supported {
            KernelPath.with(path) {
                XCTAssertEqual(KernelPath.active, path)
                XCTAssertEqual(Parallel.kernelISA, path.name)
                XCTAssertEqual(finch_avx512_selected_for_tests(), path == .avx512)
            }
            XCTAssertEqual(KernelPath.active, before)
        }
        // A path above the CPU's best is refused and changes nothing.
        if KernelPath.best < .avx512 {
            XCTAssertEqual(finch_kernels_use("avx512"), 0)
            XCTAssertEqual(KernelPath.active, before)
        }
        XCTAssertEqual(finch_kernels_use("bogus"), 0)
        XCTAssertEqual(KernelPath.active, before)
    }

    /// What FINCH_KERNELS asked for when this process started, clamped to the CPU: the best path when unset.
    /// The test below runs it in a child process with the variable set.
    func testActivePathFollowsEnvironment() {
        let value = ProcessInfo.processInfo.environment["FINCH_KERNELS"] ?? ""
        guard let asked = KernelPath(name: value) else {
            XCTAssertTrue(value.isEmpty, "the library should have refused FINCH_KERNELS=\(value)")
            XCTAssertNil(KernelPath.requested)
            XCTAssertEqual(KernelPath.active, KernelPath.best)
            XCTAssertEqual(KernelPath.summary, KernelPath.best.name)
            return
        }
        XCTAssertEqual(KernelPath.requested, asked)
        XCTAssertEqual(KernelPath.active, min(asked, KernelPath.best))
        XCTAssertEqual(KernelPath.clamped, asked > KernelPath.best)
        XCTAssertEqual(KernelPath.summary, asked > KernelPath.best
                       ? "\(KernelPath.best.name) (FINCH_KERNELS=\(asked.name) clamped)" : asked.name)
    }

    /// This test binary again, with FINCH_KERNELS set: an unknown value stops it before any test runs,
    /// naming the variable and the values it takes; a known one is obeyed.
    func testEnvironmentVariableInAChildProcess() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0])
        guard binary.lastPathComponent.hasSuffix(".xctest") else { return XCTFail("unexpected test binary \(binary.path)") }
        func run(_ value: String, _ test: String) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = binary
            p.arguments = ["FinchTensorTests.KernelPathTests/\(test)"]
            var env = ProcessInfo.processInfo.environment
            env["FINCH_KERNELS"] = value
            p.environment = env
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, out)
        }
        let (status, output) = try run("avx-512", "testActivePathFollowsEnvironment")
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.contains("FINCH_KERNELS=\"avx-512\" is not a kernel path; use generic, avx2 or avx512"), output)
        XCTAssertFalse(output.contains("Test Suite"), "no test should run: \(output)")
        for path in KernelPath.allCases {
            let (status, output) = try run(path.name, "testActivePathFollowsEnvironment")
            XCTAssertEqual(status, 0, "FINCH_KERNELS=\(path.name): \(output)")
            XCTAssertTrue(output.contains("Executed 1 test, with 0 failures"), output)
            XCTAssertEqual(output.contains("this CPU has no"), path > KernelPath.best, output)
        }
    }

    // MARK: - exponentials

    func testExponentialKernels() {
        var rng = TestRNG(71)
        // Lengths 0 … 40 cover every tail of 8 and 16 lanes; the odd start misaligns the buffers.
        let values = (0..<41).map { _ in rng.uniform(-30, 30) } + [0, -0, 90, -110, .infinity, -.infinity]
        let grads = values.map { _ in rng.uniform(-2, 2) }
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 23, 31, 33, 40, values.count - 1] {
            let x = Array(values[1..<(1 + n)]), g = Array(grads[1..<(1 + n)])
            func apply(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
                var y = [Float](repeating: .nan, count: n)
                x.withUnsafeBufferPointer { src in y.withUnsafeMutableBufferPointer { f(src.baseAddress!, $0.baseAddress!, n) } }
                return y
            }
            let s = x.map { 1 / (1 + Foundation.exp(-Double($0))) }
            let backwardScale = zip(zip(x, g), s).map { xg, s in abs(Double(xg.1)) * s * (1 + abs(Double(xg.0)) * (1 - s)) }
            assertPathsAgree("exponentials n=\(n)", run: {
                [("exp", apply { finch_exp_shifted($0, $1, $2, 0.5) }),
                 ("silu", apply { finch_silu($0, $1, $2) }),
                 ("sigmoid", apply { finch_sigmoid($0, $1, $2) }),
                 ("silu_backward", g.withUnsafeBufferPointer { gb in apply { finch_silu_backward(gb.baseAddress!, $0, $1, $2) } })]
            }, tolerance: { o, i, r in
                o == 3 ? 16 * Self.eps * Float(backwardScale[i]) + Float.leastNormalMagnitude
                    : 8 * Self.eps * abs(r) + Float.leastNormalMagnitude
            })
        }
    }

    // MARK: - convolution

    struct ConvCase {
        var name: String
        var input: [Int], weight: [Int]
        var stride = (1, 1), padding = (0, 0), dilation = (1, 1), groups = 1
        var winograd = 1  // 1: not Winograd; 4: F(2×2)'s bound; 32: F(4×4)'s
        var f4 = false
        var takes: (ConvGeometry) -> Bool
    }

    static let convCases: [ConvCase] = [
        // Channel blocks of 16 with a partial one, rows of 16 columns with a partial one.
        ConvCase(name: "depthwise 3×3 (channel tiles, direct planes)", input: [2, 17, 13, 19], weight: [17, 1, 3, 3],
                 padding: (1, 1), groups: 17) { $0.isDepthwise },
        ConvCase(name: "depthwise 5×5 stride 2 (packed rows)", input: [2, 33, 11, 21], weight: [33, 1, 5, 5],
                 stride: (2, 2), padding: (2, 2), groups: 33) { $0.isDepthwise },
        ConvCase(name: "depthwise 3×3 dilation 2", input: [1, 18, 12, 35], weight: [18, 1, 3, 3],
                 padding: (2, 2), dilation: (2, 2), groups: 18) { $0.isDepthwise },
        ConvCase(name: "few channels 3×3 stride 2", input: [2, 3, 19, 37], weight: [17, 3, 3, 3],
                 stride: (2, 2), padding: (1, 1)) { FewChannelConv.applies(to: $0) },
        ConvCase(name: "few channels 3×3 stride 1", input: [1, 3, 9, 21], weight: [20, 3, 3, 3],
                 padding: (1, 1)) { FewChannelConv.applies(to: $0) },
        ConvCase(name: "pointwise small plane", input: [2, 20, 3, 7], weight: [17, 20, 1, 1]) {
            SmallPlanePointwiseConv.applies(to: $0)
        },
        ConvCase(name: "Winograd F(2×2)", input: [2, 16, 9, 11], weight: [17, 16, 3, 3], padding: (1, 1),
                 winograd: 4) { WinogradConv.applies(to: $0) && WinogradConv.tiles(for: $0) == .two },
        ConvCase(name: "Winograd F(4×4) on AVX-512 and AVX2 against F(2×2)", input: [2, 16, 10, 13],
                 weight: [17, 16, 3, 3], padding: (1, 1), winograd: 32, f4: true) {
            WinogradConv.applies(to: $0) && (WinogradConv.tiles(for: $0) == .four) == (KernelPath.active >= .avx2)
        },
        ConvCase(name: "im2col 5×5", input: [2, 5, 7, 9], weight: [4, 5, 5, 5], padding: (2, 2)) {
            !$0.isPointwise && !WinogradConv.applies(to: $0) && !FewChannelConv.applies(to: $0)
        },
    ]

    func testConvolutionPathsForwardAndBackward() {
        for (k, c) in Self.convCases.enumerated() {
            WinogradConv.alwaysLargeTiles = c.f4
            var rng = TestRNG(UInt64(300 + k))
            let xv = rng.tensor(c.input).scalars, wv = rng.tensor(c.weight).scalars, bv = rng.tensor([c.weight[0]]).scalars
            let g = ConvGeometry(input: c.input, weight: c.weight, stride: c.stride,
                                 padding: Padding2d(c.padding.0, c.padding.1), dilation: c.dilation, groups: c.groups, op: "test")
            for path in KernelPath.supported {
                KernelPath.with(path) { XCTAssertTrue(c.takes(g), "\(c.name) on \(path): the geometry no longer takes this path") }
            }
            let rv = rng.tensor([g.n, g.cout, g.ho, g.wo], requiresGrad: false).scalars
            func run(_ x: [Float], _ w: [Float], _ b: [Float], _ r: [Float]) -> Outputs {
                let xt = Tensor(x, shape: c.input, requiresGrad: true), wt = Tensor(w, shape: c.weight, requiresGrad: true)
                let bt = Tensor(b, shape: [c.weight[0]], requiresGrad: true)
                let y = conv2d(xt, weight: wt, bias: bt, stride: c.stride, padding: c.padding, dilation: c.dilation,
                               groups: c.groups)
                (y * Tensor(r, shape: y.shape)).sum().backward()
                return [("y", y.scalars), ("dx", xt.grad!.scalars), ("dw", wt.grad!.scalars), ("db", bt.grad!.scalars)]
            }
            let magnitude = KernelPath.with(.generic) { run(xv.map(abs), wv.map(abs), bv.map(abs), rv.map(abs)) }
            let perGroupIn = c.input[1] / c.groups, perGroupOut = c.weight[0] / c.groups
            let terms = [perGroupIn * g.khw + 1, perGroupOut * g.khw, g.n * g.ho * g.wo, g.n * g.ho * g.wo]
            let worst = assertPathsAgree(c.name, run: { run(xv, wv, bv, rv) }, tolerance: { o, i, _ in
                Float(2 * c.winograd * terms[o]) * Self.eps * magnitude[o].values[i]
            })
            print("\(c.name): worst |Δ| \(worst) of the bound")
        }
    }

    // MARK: - pooling, softmax, BatchNorm, activations

    func testMaxPoolPathsAreBitEqual() {
        var rng = TestRNG(81)
        for shape in [[2, 3, 9, 9], [1, 2, 33, 35], [1, 1, 4, 70]] {
            var v = rng.tensor(shape).scalars
            v[3] = .nan
            v[v.count - 2] = v[v.count - 1]  // a tie
            let r = rng.tensor([shape[0], shape[1], (shape[2] - 1) / 2 + 1, (shape[3] - 1) / 2 + 1], requiresGrad: false)
            assertPathsAgree("maxPool2d 3×3/2 \(shape)", run: {
                let x = Tensor(v, shape: shape, requiresGrad: true)
                let y = maxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
                (y * r).sum().backward()
                return [("y", y.scalars), ("dx", x.grad!.scalars)]
            }, tolerance: { _, _, _ in 0 })
        }
    }

    func testSoftmaxPaths() {
        var rng = TestRNG(82)
        for keys in [1, 5, 16, 17, 40] {
            let shape = [3, 5, keys]
            let v = rng.tensor(shape, -8, 8).scalars, r = rng.tensor(shape, requiresGrad: false)
            for log in [false, true] {
                let bound = Float(8 + 2 * keys) * Self.eps
                assertPathsAgree("\(log ? "log-" : "")softmax over \(keys)", run: {
                    let x = Tensor(v, shape: shape, requiresGrad: true)
                    let y = log ? x.logSoftmax(axis: 2) : x.softmax(axis: 2)
                    (y * r).sum().backward()
                    return [("y", y.scalars), ("dx", x.grad!.scalars)]
                }, tolerance: { o, _, ref in
                    // The gradient sums the row's r·y terms: the same bound on the row's scale (≤ max|r| = 1).
                    o == 0 ? bound * (log ? 1 + abs(ref) : abs(ref)) + 1e-30 : bound * Float(keys) * 2
                })
            }
        }
    }

    func testBatchNormAndActivationPaths() {
        var rng = TestRNG(83)
        let activations: [FusedActivation] = [.identity, .relu, .relu6, .hardswish, .hardsigmoid, .silu, .sigmoid]
        for shape in [[2, 3, 17, 1], [3, 2, 5, 7], [2, 2, 33, 2]] {
            let c = shape[1], count = shape[0] * shape[2] * shape[3]
            let v = rng.tensor(shape, -3, 5).scalars, r = rng.tensor(shape, requiresGrad: false)
            let gamma = rng.tensor([c], 0.5, 2).scalars, beta = rng.tensor([c]).scalars
            let mean = rng.tensor([c], requiresGrad: false), variance = rng.tensor([c], 0.5, 2, requiresGrad: false)
            for training in [true, false] {
                for activation in activations {
                    let bound = 4 * Float(count) * Self.eps * 8  // |x̂| + |μ|/σ + 1 ≤ 8 for these values
                    assertPathsAgree("batchNorm2d \(shape) training \(training) \(activation)", run: {
                        let x = Tensor(v, shape: shape, requiresGrad: true)
                        let w = Tensor(gamma, shape: [c], requiresGrad: true), b = Tensor(beta, shape: [c], requiresGrad: true)
                        let y = batchNorm2d(x, weight: w, bias: b, runningMean: training ? nil : mean,
                                            runningVar: training ? nil : variance, training: training, activation: activation)
                        (y * r).sum().backward()
                        return [("y", y.scalars), ("dx", x.grad!.scalars), ("dgamma", w.grad!.scalars), ("dbeta", b.grad!.scalars)]
                    }, tolerance: { o, _, ref in
                        // γ ≤ 2; the parameter gradients add `count` terms of that size.
                        o < 2 ? 2 * bound * (1 + abs(ref)) : 2 * bound * Float(count)
                    })
                }
            }
        }
    }

    func testActivationOpPaths() {
        var rng = TestRNG(84)
        let shape = [3, 37]
        let v = rng.tensor(shape, -12, 12).scalars, r = rng.tensor(shape, requiresGrad: false)
        for (name, op) in [("silu", { (t: Tensor) in t.silu() }), ("sigmoid", { (t: Tensor) in t.sigmoid() }),
                           ("exp", { (t: Tensor) in t.exp() }), ("hardswish", { (t: Tensor) in t.hardswish() })] {
            assertPathsAgree(name, run: {
                let x = Tensor(v, shape: shape, requiresGrad: true)
                let y = op(x)
                (y * r).sum().backward()
                return [("y", y.scalars), ("dx", x.grad!.scalars)]
            }, tolerance: { o, i, ref in
                // The backward's terms: |r|·(|y| + |x·y'|) is at most 2·|r|·max(|y|, 1)·(1 + |x|).
                o == 0 ? 8 * Self.eps * abs(ref) + 1e-30 : 16 * Self.eps * (1 + abs(v[i])) * max(abs(ref), 1)
            })
        }
    }
}

/// The C dispatcher's own answer (KernelSupport.h is internal to CFinchKernels; this is the same test).
private func finch_avx512_selected_for_tests() -> Bool { finch_kernels_path() == Int32(FINCH_KERNELS_AVX512.rawValue) }
