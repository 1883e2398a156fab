import XCTest
import CFinchKernels
@testable import FinchTensor

/// Batch norm from the definition in Float64 over [N, C, S] data.
private func naiveBatchNorm(_ x: [Float], n: Int, c: Int, s: Int, weight: [Float]?, bias: [Float]?,
                            mean: [Double]? = nil, variance: [Double]? = nil, eps: Double = 1e-5) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    for ch in 0..<c {
        var idx: [Int] = []
        for i in 0..<n { for k in 0..<s { idx.append((i * c + ch) * s + k) } }
        let mu = mean?[ch] ?? idx.reduce(0.0) { $0 + Double(x[$1]) } / Double(idx.count)
        let v = variance?[ch] ?? idx.reduce(0.0) { $0 + (Double(x[$1]) - mu) * (Double(x[$1]) - mu) } / Double(idx.count)
        for t in idx {
            let xhat = (Double(x[t]) - mu) / (v + eps).squareRoot()
            out[t] = Float(xhat * Double(weight?[ch] ?? 1) + Double(bias?[ch] ?? 0))
        }
    }
    return out
}

private func naiveLayerNorm(_ x: [Float], d: Int, weight: [Float]?, bias: [Float]?, eps: Double = 1e-5) -> [Float] {
    var out = [Float]()
    for r in 0..<(x.count / d) {
        let row = x[(r * d)..<((r + 1) * d)].map(Double.init)
        let mu = row.reduce(0, +) / Double(d)
        let v = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(d)
        for (k, value) in row.enumerated() {
            out.append(Float((value - mu) / (v + eps).squareRoot() * Double(weight?[k] ?? 1) + Double(bias?[k] ?? 0)))
        }
    }
    return out
}

final class NormalizationTests: XCTestCase {
    func testBatchNormTrainingForward() {
        var rng = TestRNG(1)
        let x = rng.tensor([2, 3, 4, 5], -2, 3), w = rng.tensor([3]), b = rng.tensor([3])
        let y = batchNorm2d(x, weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        assertClose(y.scalars, naiveBatchNorm(x.scalars, n: 2, c: 3, s: 20, weight: w.scalars, bias: b.scalars),
                    atol: 1e-5, rtol: 1e-5)
        let y2 = batchNorm2d(x, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, eps: 1e-3)
        assertClose(y2.scalars, naiveBatchNorm(x.scalars, n: 2, c: 3, s: 20, weight: nil, bias: nil, eps: 1e-3),
                    atol: 1e-5, rtol: 1e-5)
    }

    func testRunningStatsUpdate() {
        // Channel 0 holds 1, 2, 3, 6: mean 3, biased var 14/4 = 3.5, unbiased var 14/3.
        // Channel 1 holds 0, 4, -2, 2: mean 1, biased var 20/4 = 5, unbiased var 20/3.
        let x = Tensor([1, 2, 0, 4, 3, 6, -2, 2], shape: [2, 2, 1, 2])
        let rm = Tensor([0, 10], shape: [2]), rv = Tensor([1, 2], shape: [2])
        let y = batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.1)
        assertClose(rm.scalars, [0.9 * 0 + 0.1 * 3, 0.9 * 10 + 0.1 * 1])
        assertClose(rv.scalars, [0.9 * 1 + 0.1 * 14 / 3, 0.9 * 2 + 0.1 * 20 / 3])
        // The output uses the biased variance.
        let inv0 = 1 / Float(3.5 + 1e-5).squareRoot()
        XCTAssertEqual(y[0, 0, 0, 0], (1 - 3) * inv0, accuracy: 1e-6)
        XCTAssertEqual(y[1, 0, 0, 1], (6 - 3) * inv0, accuracy: 1e-6)

        // A second step compounds; a custom momentum weighs the new batch by m.
        _ = batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.5)
        assertClose(rm.scalars, [0.5 * 0.3 + 0.5 * 3, 0.5 * 9.1 + 0.5 * 1])
        assertClose(rv.scalars, [0.5 * (0.9 + 1.4 / 3) + 0.5 * 14 / 3, 0.5 * (1.8 + 2 / 3) + 0.5 * 20 / 3], atol: 1e-5)

        // Evaluation leaves the statistics alone.
        let before = (rm.scalars, rv.scalars)
        _ = batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: false)
        XCTAssertEqual(rm.scalars, before.0)
        XCTAssertEqual(rv.scalars, before.1)
    }

    func testBatchNormEvalForward() {
        var rng = TestRNG(2)
        let x = rng.tensor([2, 3, 3, 3]), w = rng.tensor([3]), b = rng.tensor([3])
        let rm = rng.tensor([3], requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
        let y = batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        assertClose(y.scalars, naiveBatchNorm(x.scalars, n: 2, c: 3, s: 9, weight: w.scalars, bias: b.scalars,
                                              mean: rm.scalars.map(Double.init), variance: rv.scalars.map(Double.init)))
    }

    func testBatchNormGradients() {
        var rng = TestRNG(3)
        let x = rng.tensor([2, 3, 3, 4]), w = rng.tensor([3], 0.5, 1.5), b = rng.tensor([3])
        let rm = rng.tensor([3], requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
        for training in [true, false] {
            assertGradients([x, w, b]) { t in
                batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: rm.copy(), runningVar: rv.copy(),
                            training: training)
            }
        }
        // Without affine parameters, and with only some inputs requiring gradients.
        assertGradients([x]) { t in
            batchNorm2d(t[0], weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        let xFixed = rng.tensor([2, 3, 2, 2], requiresGrad: false)
        assertGradients([xFixed, w]) { t in
            batchNorm2d(t[0], weight: t[1], bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
    }

    /// Every activation BatchNorm can fuse, with the separate op it must equal.
    private let fusableActivations: [(FusedActivation, (Tensor) -> Tensor)] = [
        (.relu, { $0.relu() }), (.relu6, { $0.relu6() }), (.hardswish, { $0.hardswish() }),
        (.hardsigmoid, { $0.hardsigmoid() }), (.silu, { $0.silu() }), (.sigmoid, { $0.sigmoid() }),
        (.identity, { $0 }),
    ]

    /// The fused op keeps only x and recomputes the normalised map in backward; it must give the
    /// unfused ops' output and gradients bit for bit, in training and in eval, for every activation.
    func testBatchNormWithFusedActivationEqualsSeparateOps() {
        var rng = TestRNG(31)
        for (activation, apply) in fusableActivations {
            for training in [true, false] {
                // Spread to reach every branch: relu6's 6, hardswish's ±3.
                let x = rng.tensor([2, 3, 5, 7], -8, 8), w = rng.tensor([3], 0.5, 3), b = rng.tensor([3], -2, 2)
                let rm = rng.tensor([3], -1, 1, requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
                let upstream = rng.tensor([2, 3, 5, 7], requiresGrad: false)
                func run(_ fused: Bool) -> (y: [Float], dx: [Float], dw: [Float], db: [Float], rm: [Float]) {
                    for t in [x, w, b] { t.grad = nil }
                    let runMean = rm.copy(), runVar = rv.copy()
                    let y = fused
                        ? batchNorm2d(x, weight: w, bias: b, runningMean: runMean, runningVar: runVar,
                                      training: training, activation: activation)
                        : apply(batchNorm2d(x, weight: w, bias: b, runningMean: runMean, runningVar: runVar,
                                            training: training))
                    (y * upstream).sum().backward()
                    return (y.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars, runMean.scalars)
                }
                let fused = run(true), separate = run(false)
                let label = "\(activation) training=\(training)"
                XCTAssertEqual(fused.y, separate.y, label)
                XCTAssertEqual(fused.dx, separate.dx, label)
                XCTAssertEqual(fused.dw, separate.dw, label)
                XCTAssertEqual(fused.db, separate.db, label)
                XCTAssertEqual(fused.rm, separate.rm, label)
            }
        }
        // And against finite differences, for one smooth and one piecewise activation.
        let x = rng.tensor([2, 3, 3, 4]), w = rng.tensor([3], 0.5, 1.5), b = rng.tensor([3])
        for activation in [FusedActivation.silu, .hardswish] {
            assertGradients([x, w, b]) { t in
                batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: nil, runningVar: nil, training: true,
                            activation: activation)
            }
        }
    }

    /// A residual block's end as one op, act(batch_norm(x) + r), equals batch_norm, + and the
    /// activation recorded apart, bit for bit: output, every gradient and the running statistics,
    /// in training and evaluation, on every kernel path the CPU has, with recomputation chains on
    /// and off, and with a residual that needs no gradient. Planes of 5·7 = 35 values end inside
    /// a vector on every path.
    func testResidualBatchNormEqualsSeparateOps() {
        defer { SavedActivations.chains = true }
        var rng = TestRNG(37)
        for path in KernelPath.supported {
            for activation in [FusedActivation.relu, .identity] {
                for training in [true, false] {
                    for (chains, residualNeedsGrad) in [(true, true), (false, true), (true, false)] {
                        SavedActivations.chains = chains
                        let x = rng.tensor([2, 3, 5, 7], -4, 4), w = rng.tensor([3], 0.5, 3), b = rng.tensor([3], -2, 2)
                        // The residual a BatchNorm output (rebuildable, as in a stage's first block) or a leaf.
                        let shortcutInput = rng.tensor([2, 3, 5, 7], -4, 4)
                        let leaf = rng.tensor([2, 3, 5, 7], -2, 2, requiresGrad: residualNeedsGrad)
                        let rm = rng.tensor([3], -1, 1, requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
                        let upstream = rng.tensor([2, 3, 5, 7], requiresGrad: false)
                        func run(_ fused: Bool) -> [[Float]] {
                            for t in [x, w, b, shortcutInput, leaf] { t.grad = nil }
                            let runMean = rm.copy(), runVar = rv.copy()
                            let r = residualNeedsGrad
                                ? batchNorm2d(shortcutInput, weight: nil, bias: nil, runningMean: nil, runningVar: nil,
                                              training: true)
                                : leaf
                            let y: Tensor
                            if fused {
                                y = batchNorm2d(x, weight: w, bias: b, runningMean: runMean, runningVar: runVar,
                                                training: training, adding: r, then: activation)
                            } else {
                                let sum = batchNorm2d(x, weight: w, bias: b, runningMean: runMean, runningVar: runVar,
                                                      training: training) + r
                                y = activation == .relu ? sum.relu() : sum
                            }
                            // Read twice, as a block output is (the next block's convolution and its sum).
                            ((y * upstream).sum() + (y * y).mean()).backward()
                            let rGrad = residualNeedsGrad ? shortcutInput.grad!.scalars : []
                            XCTAssertNil(leaf.grad)
                            return [y.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars, rGrad,
                                    runMean.scalars, runVar.scalars]
                        }
                        let (fused, separate) = KernelPath.with(path) { (run(true), run(false)) }
                        let label = "\(path) \(activation) training=\(training) chains=\(chains) residual grad=\(residualNeedsGrad)"
                        for (i, name) in ["y", "dx", "dγ", "dβ", "dr", "running mean", "running var"].enumerated() {
                            XCTAssertEqual(fused[i].map(\.bitPattern), separate[i].map(\.bitPattern), "\(label): \(name)")
                        }
                    }
                }
            }
        }
        // And against finite differences, residual included. The residual's values, ±6 to ±8, keep
        // every sum at least a unit from ReLU's kink (|batch_norm(x)| stays under 5 here), so the
        // differences see no kink.
        let x = rng.tensor([2, 3, 3, 4]), w = rng.tensor([3], 0.5, 1.5), b = rng.tensor([3])
        let magnitudes = rng.tensor([2, 3, 3, 4], 6, 8, requiresGrad: false).scalars
        let r = Tensor(magnitudes.enumerated().map { $0.offset % 3 == 0 ? -$0.element : $0.element }, shape: [2, 3, 3, 4])
            .requiringGrad()
        for activation in [FusedActivation.relu, .identity] {
            for training in [true, false] {
                let rm = rng.tensor([3], -1, 1, requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
                assertGradients([x, w, b, r]) { t in
                    batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: rm.copy(), runningVar: rv.copy(),
                                training: training, adding: t[3], then: activation)
                }
            }
        }
    }

    /// Evaluation-mode BatchNorm fused with its activation (the inference kernel, in C with AVX-512
    /// where the CPU has it) equals the unfused ops bit for bit, tails included (7·5 = 35 values per plane).
    func testInferenceKernelEqualsSeparateOps() {
        var rng = TestRNG(33)
        for (activation, apply) in fusableActivations {
            let x = rng.tensor([2, 3, 5, 7], -8, 8, requiresGrad: false)
            let w = rng.tensor([3], 0.5, 3, requiresGrad: false), b = rng.tensor([3], -2, 2, requiresGrad: false)
            let rm = rng.tensor([3], -1, 1, requiresGrad: false), rv = rng.tensor([3], 0.5, 2, requiresGrad: false)
            let fused = batchNormActivationInference(x, weight: w, bias: b, runningMean: rm, runningVar: rv, eps: 1e-5,
                                                     activation: activation)
            let separate = apply(batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false))
            XCTAssertEqual(fused.scalars, separate.scalars, "\(activation)")
        }
    }

    /// The per-plane passes of training-mode BatchNorm (AVX-512 in C where the CPU has it, Swift otherwise) against
    /// Float64, on lengths with and without a partial vector, and with dx written over g as the
    /// fused-activation backward does; then the whole training backward by finite differences on each.
    func testBatchNormBackwardKernels() {
        let native = String(cString: finch_kernels_isa())
        defer { _ = finch_kernels_use(native) }
        var rng = TestRNG(35)
        var tested: [String] = []
        for isa in ["avx512", "generic"] where finch_kernels_use(isa) == 1 {
            tested.append(isa)
            for n in [1, 15, 16, 17, 31, 32, 33, 100] {
                let g = rng.tensor([n], -2, 2).scalars, x = rng.tensor([n], -3, 5).scalars
                let mean: Float = 0.75, a: Float = 1.3, meanG: Float = -0.2, k: Float = 0.4
                let refSum = x.reduce(0.0) { $0 + Double($1) }
                let refSq = x.reduce(0.0) { $0 + (Double($1) - Double(mean)) * (Double($1) - Double(mean)) }
                XCTAssertEqual(Double(BatchNormKernels.sum(x, n)), refSum, accuracy: 1e-5 * Double(n), "\(isa) n=\(n)")
                XCTAssertEqual(Double(BatchNormKernels.sumSquaredDeviation(x, n, mean: mean)), refSq, accuracy: 1e-5 * refSq,
                               "\(isa) n=\(n)")
                let sums = BatchNormKernels.sums(g, x, n, mean: mean)
                let refG = g.reduce(0.0) { $0 + Double($1) }
                let refGX = zip(g, x).reduce(0.0) { $0 + Double($1.0) * (Double($1.1) - Double(mean)) }
                XCTAssertEqual(Double(sums.g), refG, accuracy: 1e-5 * Double(n), "\(isa) n=\(n)")
                XCTAssertEqual(Double(sums.gCentered), refGX, accuracy: 1e-5 * Double(n), "\(isa) n=\(n)")
                var dx = g
                dx.withUnsafeMutableBufferPointer { d in
                    BatchNormKernels.inputGradient(d.baseAddress!, x, d.baseAddress!, n, scale: a, meanG: meanG, mean: mean, k: k)
                }
                for t in 0..<n {
                    let ref = Double(a) * (Double(g[t]) - Double(meanG) - (Double(x[t]) - Double(mean)) * Double(k))
                    XCTAssertEqual(Double(dx[t]), ref, accuracy: 1e-5 * max(1, abs(ref)), "\(isa) n=\(n) t=\(t)")
                }
            }
            let x = rng.tensor([2, 3, 5, 7]), w = rng.tensor([3], 0.5, 1.5), b = rng.tensor([3])
            for activation in [FusedActivation.identity, .silu] {
                assertGradients([x, w, b]) { t in
                    batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: nil, runningVar: nil, training: true,
                                activation: activation)
                }
            }
        }
        XCTAssertTrue(tested.contains("generic"))
    }

    func testBatchNorm1d() {
        var rng = TestRNG(4)
        let x = rng.tensor([5, 3]), w = rng.tensor([3]), b = rng.tensor([3])
        let y = batchNorm2d(x, weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        assertClose(y.scalars, naiveBatchNorm(x.scalars, n: 5, c: 3, s: 1, weight: w.scalars, bias: b.scalars),
                    atol: 1e-5, rtol: 1e-5)
        assertGradients([x, w, b]) { t in
            batchNorm2d(t[0], weight: t[1], bias: t[2], runningMean: nil, runningVar: nil, training: true)
        }
    }

    func testLayerNorm() {
        var rng = TestRNG(5)
        let x = rng.tensor([2, 3, 6], -2, 2), w = rng.tensor([6]), b = rng.tensor([6])
        let y = layerNorm(x, normalizedShape: [6], weight: w, bias: b)
        assertClose(y.scalars, naiveLayerNorm(x.scalars, d: 6, weight: w.scalars, bias: b.scalars), atol: 1e-5)
        assertGradients([x, w, b]) { t in layerNorm(t[0], normalizedShape: [6], weight: t[1], bias: t[2]) }
        assertGradients([x]) { t in layerNorm(t[0], normalizedShape: [6], weight: nil, bias: nil) }

        // Two normalised axes, a row longer than one SIMD stride, and a non-contiguous input.
        let x2 = rng.tensor([3, 5, 4]), w2 = rng.tensor([5, 4]), b2 = rng.tensor([5, 4])
        assertClose(layerNorm(x2, normalizedShape: [5, 4], weight: w2, bias: b2).scalars,
                    naiveLayerNorm(x2.scalars, d: 20, weight: w2.scalars, bias: b2.scalars), atol: 1e-5)
        assertGradients([x2, w2, b2]) { t in layerNorm(t[0], normalizedShape: [5, 4], weight: t[1], bias: t[2]) }
        let xt = x2.transposed(0, 2)
        assertClose(layerNorm(xt, normalizedShape: [3], weight: nil, bias: nil, eps: 1e-6).scalars,
                    naiveLayerNorm(xt.scalars, d: 3, weight: nil, bias: nil, eps: 1e-6), atol: 1e-5)
    }
}
