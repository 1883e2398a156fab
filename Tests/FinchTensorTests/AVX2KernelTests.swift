import XCTest
import CFinchKernels
@testable import FinchTensor

/// The AVX2 kernels (KernelsAVX2.h) against their twins: the Winograd F(2×2) transforms against the
/// Swift kernels (input and weight transforms bit for bit, the output-gradient transform up to the
/// sign of zero, the output transform, whose Swift tail sums in another order, within a few ulps of
/// its terms) and against the AVX-512 kernels bit for bit; the F(4×4) transforms against the AVX-512
/// ones bit for bit (WinogradF4Tests checks both against Float64); max pooling and the per-plane
/// depthwise kernels likewise. Planes cover rows of four tiles (two rows per AVX2 vector), partial
/// vectors, odd edges and padding 0 to 2; untouched parts of the buffers must stay untouched (NaN).
final class AVX2KernelTests: XCTestCase {
    static let eps: Float = 1.0 / Float(1 << 24)

    /// (n, h, w, padding): 8×8 (tw = 4), 9×9 (tw = 5), 16×16 (tw = 8), 21×19 and 34×17 with uneven padding.
    let planes: [(n: Int, h: Int, w: Int, padding: Padding2d)] = [
        (2, 8, 8, Padding2d(1, 1)), (1, 9, 9, Padding2d(1, 1)), (2, 16, 16, Padding2d(1, 1)),
        (1, 21, 19, Padding2d(top: 2, bottom: 0, left: 0, right: 2)),
        (3, 34, 17, Padding2d(top: 0, bottom: 1, left: 2, right: 1)), (1, 7, 12, Padding2d(0, 0)),
    ]

    /// Fails with the first element whose bits differ (NaN where neither wrote counts as equal bits).
    private func assertBitEqual(_ got: [Float], _ want: [Float], _ label: String, file: StaticString = #filePath,
                                line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, label, file: file, line: line)
        if let i = got.indices.first(where: { $0 < want.count && got[$0].bitPattern != want[$0].bitPattern }) {
            XCTFail("\(label): [\(i)] \(got[i]) against \(want[i])", file: file, line: line)
        }
    }

    /// The paths other than `path` to compare it with: generic, and AVX-512 where the CPU has it.
    private var avx2: Bool {
        if KernelPath.best >= .avx2 { return true }
        XCTAssertEqual(finch_winograd_weight_transform(nil, 0, nil, 0, 0), 0, "no AVX2: no C kernels")
        return false
    }

    /// On the avx2 path each entry point runs its AVX2 kernel (returns 1; the comparisons below would
    /// otherwise compare the Swift kernels with themselves), on the generic path none. Empty ranges:
    /// nothing is read or written.
    func testAVX2PathTakesTheCKernels() {
        guard avx2 else { return }
        // {kh, kw, sh, dh, dw, pt, h, ho = 0, wo, packed row, padded row, edge, gather or sw = 1, w, pl}
        let geometry = [3, 3, 1, 1, 1, 1, 4, 0, 4, 6, 6, 2, 1, 4, 1], taps = [0, 1, 2]
        var scratch = [Float](repeating: 0, count: 64)
        for path in [KernelPath.generic, .avx2] {
            let expected: Int32 = path == .avx2 ? 1 : 0
            KernelPath.with(path) {
                XCTAssertEqual(finch_winograd_weight_transform(nil, 0, nil, 0, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd_input_transform(nil, 0, 0, 0, 0, 0, 0, nil, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd_gradient_transform(nil, 0, 0, 0, 0, nil, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd_output_transform(nil, 0, 0, 0, 0, 0, 0, nil), expected, "\(path)")
                XCTAssertEqual(finch_winograd4_weight_transform(nil, 0, nil, 0, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd4_weight_gradient(nil, 0, nil, 0, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd4_input_transform(nil, 0, 0, 0, 0, 0, 0, 0, 0, nil, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd4_gradient_transform(nil, 0, 0, 0, 0, 0, 0, nil, 0), expected, "\(path)")
                XCTAssertEqual(finch_winograd4_output_transform(nil, 0, 0, 0, 0, 0, 0, 0, 0, nil), expected, "\(path)")
                XCTAssertEqual(finch_max_pool3x3s2(nil, 0, 0, 0, 0, 0, 0, nil, nil), expected, "\(path)")
                XCTAssertEqual(finch_affine_activation(nil, nil, 0, 0, 1, 0, 3), expected, "\(path)")
                XCTAssertEqual(finch_residual_activation(nil, nil, nil, 0, 0, 1, 0, 3), expected, "\(path)")
                XCTAssertEqual(finch_pointwise_small(nil, nil, nil, nil, 1, 1, 1, 16, 0, 0, nil), expected, "\(path)")
                scratch.withUnsafeMutableBufferPointer { b in
                    let p = b.baseAddress!
                    XCTAssertEqual(finch_depthwise_forward_plane(p, p, 0, p, geometry, taps), expected, "\(path)")
                    XCTAssertEqual(finch_depthwise_forward_direct(p, p, 0, p, geometry), expected, "\(path)")
                    XCTAssertEqual(finch_depthwise_backward_plane(p, p, p, p, p, p, geometry, taps), expected, "\(path)")
                }
            }
        }
    }

    /// The four F(2×2) transforms of one geometry on the active path.
    private func f2(_ g: ConvGeometry, x: [Float], m: [Float], dy: [Float], w: [Float], bias: [Float], cout: Int)
        -> (v: [Float], y: [Float], mt: [Float], u: [Float]) {
        let th = (g.ho + 1) / 2, tw = (g.wo + 1) / 2, p = g.n * th * tw
        let vStride = g.c * p + 3, mStride = cout * p + 5
        var v = [Float](repeating: .nan, count: 16 * vStride), mt = [Float](repeating: .nan, count: 16 * mStride)
        var y = [Float](repeating: .nan, count: g.n * cout * g.hw), u = [Float](repeating: .nan, count: 16 * cout * g.c)
        x.withUnsafeBufferPointer { xp in
            v.withUnsafeMutableBufferPointer {
                WinogradConv.inputTransform(xp.baseAddress!, g, n0: 0, nb: g.n, th: th, tw: tw, stride: vStride,
                                            parallel: false, into: $0.baseAddress!)
            }
        }
        m.withUnsafeBufferPointer { mp in
            bias.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer {
                    WinogradConv.outputTransform(mp.baseAddress!, g, n0: 0, nb: g.n, th: th, tw: tw, stride: mStride,
                                                 bias: bp.baseAddress!, parallel: false, into: $0.baseAddress!)
                }
            }
        }
        dy.withUnsafeBufferPointer { dp in
            mt.withUnsafeMutableBufferPointer {
                WinogradConv.gradientTransform(dp.baseAddress!, g, n0: 0, nb: g.n, th: th, tw: tw, stride: mStride,
                                               parallel: false, into: $0.baseAddress!)
            }
        }
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer {
                WinogradConv.transformWeights(wp.baseAddress!, cout: cout, cin: g.c, into: $0.baseAddress!, .two)
            }
        }
        return (v, y, mt, u)
    }

    func testWinogradF2TransformsAgainstSwiftAndAVX512() {
        guard avx2 else { return }
        var rng = TestRNG(250)
        for (k, pl) in planes.enumerated() {
            // cout·cin = 15 filters: one vector of eight and a partial one.
            let c = 3, cout = 5
            let g = ConvGeometry(input: [pl.n, c, pl.h, pl.w], weight: [cout, c, 3, 3], stride: (1, 1),
                                 padding: pl.padding, dilation: (1, 1), groups: 1, op: "test")
            let th = (g.ho + 1) / 2, tw = (g.wo + 1) / 2, p = g.n * th * tw
            let x = (0..<(g.n * c * g.h * g.w)).map { _ in rng.uniform() }
            let m = (0..<(16 * (cout * p + 5))).map { _ in rng.uniform() }
            let dy = (0..<(g.n * cout * g.hw)).map { _ in rng.uniform() }
            let w = (0..<(cout * c * 9)).map { _ in rng.uniform() }, bias = (0..<cout).map { _ in rng.uniform() }
            let generic = KernelPath.with(.generic) { f2(g, x: x, m: m, dy: dy, w: w, bias: bias, cout: cout) }
            let ours = KernelPath.with(.avx2) { f2(g, x: x, m: m, dy: dy, w: w, bias: bias, cout: cout) }
            assertBitEqual(ours.v, generic.v, "plane \(k): input transform")
            // Equal values: where an odd edge leaves the second output row out, −dY₁ is −0 in C (a sign
            // flip, as on AVX-512) and +0 in Swift's SIMD negation (0 − x); no sum can tell them apart.
            if let i = ours.mt.indices.first(where: { !(ours.mt[$0] == generic.mt[$0]
                                                      || (ours.mt[$0].isNaN && generic.mt[$0].isNaN)) }) {
                XCTFail("plane \(k): output-gradient transform [\(i)] \(ours.mt[i]) against \(generic.mt[i])")
            }
            assertBitEqual(ours.u, generic.u, "plane \(k): weight transform")
            // Each output sums nine of its tile's sixteen terms of M and the bias, in another order
            // than the Swift tail: within a few ulps of their magnitude.
            XCTAssertFalse(ours.y.contains { $0.isNaN }, "plane \(k): output transform left outputs unwritten")
            let mStride = cout * p + 5, tiles = th * tw
            outputs: for s in 0..<g.n { for co in 0..<cout { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let t = s * tiles + (oy / 2) * tw + ox / 2, i = ((s * cout + co) * g.ho + oy) * g.wo + ox
                let magnitude = (0..<16).reduce(abs(bias[co])) { $0 + abs(m[$1 * mStride + co * p + t]) }
                if abs(ours.y[i] - generic.y[i]) > 8 * Self.eps * magnitude {
                    XCTFail("plane \(k): output [\(i)] \(ours.y[i]) on avx2, \(generic.y[i]) generic")
                    break outputs
                }
            } } } }
            if KernelPath.best == .avx512 {
                let wide = KernelPath.with(.avx512) { f2(g, x: x, m: m, dy: dy, w: w, bias: bias, cout: cout) }
                assertBitEqual(ours.y, wide.y, "plane \(k): output transform against AVX-512")
                assertBitEqual(ours.v, wide.v, "plane \(k): input transform against AVX-512")
                assertBitEqual(ours.mt, wide.mt, "plane \(k): output-gradient transform against AVX-512")
                assertBitEqual(ours.u, wide.u, "plane \(k): weight transform against AVX-512")
            }
        }
    }

    /// The five F(4×4) transforms of one geometry on the active path.
    private func f4(_ g: ConvGeometry, x: [Float], m: [Float], dy: [Float], w: [Float], du: [Float], bias: [Float])
        -> [[Float]] {
        let th = (g.ho + 3) / 4, tw = (g.wo + 3) / 4, cols = g.n * th * tw, filters = g.cout * g.c
        let chunk = WinogradConv.Chunk(n0: 0, nb: g.n, th: th, tw: tw, p: cols, vStride: g.c * cols + 3,
                                       mStride: g.cout * cols + 5, kind: .four)
        var v = [Float](repeating: .nan, count: 36 * chunk.vStride), mt = [Float](repeating: .nan, count: 36 * chunk.mStride)
        var y = [Float](repeating: .nan, count: g.n * g.cout * g.hw), u = [Float](repeating: .nan, count: 36 * filters)
        var dw = [Float](repeating: .nan, count: 9 * filters)
        x.withUnsafeBufferPointer { xp in
            v.withUnsafeMutableBufferPointer {
                WinogradConv.inputTransform(xp.baseAddress!, g, chunk, parallel: false, into: $0.baseAddress!)
            }
        }
        m.withUnsafeBufferPointer { mp in
            bias.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer {
                    WinogradConv.outputTransform(mp.baseAddress!, g, chunk, bias: bp.baseAddress!, epilogue: .none,
                                                 parallel: false, into: $0.baseAddress!)
                }
            }
        }
        dy.withUnsafeBufferPointer { dp in
            mt.withUnsafeMutableBufferPointer {
                WinogradConv.gradientTransform(dp.baseAddress!, g, chunk, parallel: false, into: $0.baseAddress!)
            }
        }
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer {
                WinogradConv.transformWeights(wp.baseAddress!, cout: g.cout, cin: g.c, into: $0.baseAddress!, .four)
            }
        }
        du.withUnsafeBufferPointer { dp in
            dw.withUnsafeMutableBufferPointer {
                WinogradConv.weightGradientFromTransformed(dp.baseAddress!, cout: g.cout, cin: g.c,
                                                           into: $0.baseAddress!, .four)
            }
        }
        return [v, y, mt, u, dw]
    }

    func testWinogradF4TransformsAgainstAVX512() {
        guard avx2 else { return }
        guard KernelPath.best == .avx512 else {
            // No twin on this CPU: WinogradF4Tests checks the AVX2 transforms against Float64.
            return XCTAssertEqual(KernelPath.active, .avx2)
        }
        var rng = TestRNG(251)
        let names = ["input", "output", "output gradient", "weights", "weight gradient"]
        for (k, pl) in planes.enumerated() {
            let c = 3, cout = 5
            let g = ConvGeometry(input: [pl.n, c, pl.h, pl.w], weight: [cout, c, 3, 3], stride: (1, 1),
                                 padding: pl.padding, dilation: (1, 1), groups: 1, op: "test")
            let cols = g.n * ((g.ho + 3) / 4) * ((g.wo + 3) / 4)
            let x = (0..<(g.n * c * g.h * g.w)).map { _ in rng.uniform() }
            let m = (0..<(36 * (cout * cols + 5))).map { _ in rng.uniform() }
            let dy = (0..<(g.n * cout * g.hw)).map { _ in rng.uniform() }
            let w = (0..<(cout * c * 9)).map { _ in rng.uniform() }, du = (0..<(36 * cout * c)).map { _ in rng.uniform() }
            let bias = (0..<cout).map { _ in rng.uniform() }
            let ours = KernelPath.with(.avx2) { f4(g, x: x, m: m, dy: dy, w: w, du: du, bias: bias) }
            let wide = KernelPath.with(.avx512) { f4(g, x: x, m: m, dy: dy, w: w, du: du, bias: bias) }
            for (i, name) in names.enumerated() {
                assertBitEqual(ours[i], wide[i], "plane \(k): F(4×4) \(name) transform")
            }
            XCTAssertFalse(ours[1].contains { $0.isNaN }, "plane \(k): output transform left outputs unwritten")
            XCTAssertFalse(ours[4].contains { $0.isNaN }, "plane \(k): weight gradient left filters unwritten")
        }
    }

    /// The pooling kernel on rows that end inside and at a vector of eight, with −∞ padding,
    /// NaN and ties, bit for bit against the generic loop (values and argmax through the gradient).
    func testMaxPool3x3s2AgainstGeneric() {
        guard avx2 else { return }
        var rng = TestRNG(252)
        for shape in [[1, 2, 7, 15], [2, 1, 10, 33], [1, 1, 3, 17], [1, 3, 16, 48]] {
            var v = rng.tensor(shape).scalars
            v[1] = .nan
            v[v.count - 3] = v[v.count - 1]
            let ho = (shape[2] - 1) / 2 + 1, wo = (shape[3] - 1) / 2 + 1
            let r = rng.tensor([shape[0], shape[1], ho, wo], requiresGrad: false)
            func run() -> [[Float]] {
                let x = Tensor(v, shape: shape, requiresGrad: true)
                let y = maxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
                (y * r).sum().backward()
                return [y.scalars, x.grad!.scalars]
            }
            let generic = KernelPath.with(.generic) { run() }, ours = KernelPath.with(.avx2) { run() }
            assertBitEqual(ours[0], generic[0], "maxPool2d \(shape): values")
            assertBitEqual(ours[1], generic[1], "maxPool2d \(shape): gradient (argmax)")
        }
    }

    /// The per-plane depthwise kernels (channel tiles off): the forward bit for bit against the Swift
    /// rows kernel (same operations, no FMA), from packed rows and straight from the plane; forward
    /// and both gradients bit for bit against AVX-512. Rows of 37 and 20 columns end in partial vectors.
    func testDepthwisePlanesAgainstGenericAndAVX512() {
        guard avx2 else { return }
        let saved = DepthwiseConvChannelTiles.maxOutputWidth
        defer {
            DepthwiseConvChannelTiles.maxOutputWidth = saved
            DepthwiseConv.allowDirect = true
        }
        DepthwiseConvChannelTiles.maxOutputWidth = 0
        let cases: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))] = [
            ([2, 3, 6, 37], [3, 1, 3, 3], (1, 1), (1, 1), (1, 1)),
            ([1, 2, 7, 20], [2, 1, 5, 5], (2, 1), (2, 2), (1, 1)),
            ([1, 2, 9, 21], [2, 1, 3, 3], (2, 2), (1, 1), (1, 1)),
            ([1, 2, 8, 19], [2, 1, 3, 3], (1, 1), (2, 2), (2, 2)),
        ]
        var rng = TestRNG(253)
        for (k, cfg) in cases.enumerated() {
            let x = rng.tensor(cfg.x).scalars, w = rng.tensor(cfg.w).scalars, b = rng.tensor([cfg.w[0]]).scalars
            let groups = cfg.x[1]
            func run(direct: Bool) -> [[Float]] {
                DepthwiseConv.allowDirect = direct
                let xt = Tensor(x, shape: cfg.x, requiresGrad: true), wt = Tensor(w, shape: cfg.w, requiresGrad: true)
                let bt = Tensor(b, shape: [cfg.w[0]], requiresGrad: true)
                let y = conv2d(xt, weight: wt, bias: bt, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation,
                               groups: groups)
                (y * y).sum().backward()
                return [y.scalars, xt.grad!.scalars, wt.grad!.scalars]
            }
            for direct in [true, false] {
                let generic = KernelPath.with(.generic) { run(direct: direct) }
                let ours = KernelPath.with(.avx2) { run(direct: direct) }
                assertBitEqual(ours[0], generic[0], "case \(k) direct \(direct): forward against Swift")
                if KernelPath.best == .avx512 {
                    let wide = KernelPath.with(.avx512) { run(direct: direct) }
                    for (i, name) in ["y", "dx", "dw"].enumerated() {
                        assertBitEqual(ours[i], wide[i], "case \(k) direct \(direct): \(name) against AVX-512")
                    }
                }
            }
        }
    }

    /// BatchNorm's per-channel pass with each activation, and a residual block's end, bit for bit
    /// against the Swift fallback the avx2 path ran before (affine loop, then the activation kernel
    /// of this path) and, except silu and sigmoid (AVX-512 refines a reciprocal estimate), against
    /// AVX-512. Lengths end inside and at a vector of eight; past the end nothing is written.
    func testBatchNormActivationAgainstSwiftAndAVX512() {
        guard avx2 else { return }
        let activations: [FusedActivation] = [.identity, .relu, .relu6, .hardswish, .hardsigmoid, .silu, .sigmoid]
        var rng = TestRNG(254)
        for count in [1, 7, 8, 9, 16, 49, 64, 100] {
            // Both sides of every kink (±3, 0, 6) and the exponential's range.
            var src = (0..<count).map { _ in rng.uniform(-8, 8) }
            for (k, v) in [Float(-3), 3, 0, -0.0, 6, -90, 90].enumerated() where k < count { src[k] = v }
            let r = (0..<count).map { _ in rng.uniform(-2, 2) }
            for (mean, scale, shift) in [(Float(0.3), Float(1.7), Float(-0.4)), (0, 1, 0.25)] {
                for act in activations {
                    let label = "\(act) n=\(count) mean=\(mean) scale=\(scale)"
                    func twin(residual: Bool) -> [Float] {
                        var y = [Float](repeating: .nan, count: count + 3)
                        for k in 0..<count {
                            let z = (src[k] - mean) * scale + shift
                            y[k] = residual ? z + r[k] : z
                        }
                        y.withUnsafeMutableBufferPointer { Kernels.activate($0.baseAddress!, count, act) }
                        return y
                    }
                    // The residual form writes over x (evaluation's epilogue), over r (a training
                    // rebuild) or to a buffer of its own (training's forward).
                    enum Form: CaseIterable { case affine, residualOverX, residualOverR, residualApart }
                    func kernel(_ form: Form) -> [Float] {
                        var y = [Float](repeating: .nan, count: count + 3)
                        switch form {
                        case .affine:
                            XCTAssertEqual(finch_affine_activation(src, &y, count, mean, scale, shift, act.kernelCode), 1, label)
                        case .residualOverX:
                            for k in 0..<count { y[k] = src[k] }
                            y.withUnsafeMutableBufferPointer { b in
                                XCTAssertEqual(finch_residual_activation(b.baseAddress, r, b.baseAddress, count, mean, scale, shift,
                                                                         act.kernelCode), 1, label)
                            }
                        case .residualOverR:
                            for k in 0..<count { y[k] = r[k] }
                            y.withUnsafeMutableBufferPointer { b in
                                XCTAssertEqual(finch_residual_activation(src, b.baseAddress, b.baseAddress, count, mean, scale, shift,
                                                                         act.kernelCode), 1, label)
                            }
                        case .residualApart:
                            XCTAssertEqual(finch_residual_activation(src, r, &y, count, mean, scale, shift, act.kernelCode), 1, label)
                        }
                        return y
                    }
                    for form in Form.allCases {
                        let residual = form != .affine
                        let want = KernelPath.with(.avx2) { twin(residual: residual) }
                        let ours = KernelPath.with(.avx2) { kernel(form) }
                        assertBitEqual(ours, want, "\(label) \(form): against Swift")
                        if KernelPath.best == .avx512 && act != .silu && act != .sigmoid {
                            let wide = KernelPath.with(.avx512) { kernel(form) }
                            assertBitEqual(ours, wide, "\(label) \(form): against AVX-512")
                        }
                    }
                }
            }
        }
    }

    /// The channel-tile depthwise forward (output planes up to 16 wide): bit for bit against the Swift
    /// SIMD8 kernel (same arithmetic, no FMA). 21 channels: a block of sixteen and one of five lanes;
    /// 3×3, 5×5 stride 2 and 3×3 dilation 2, with and without bias.
    func testDepthwiseChannelTilesAgainstSwift() {
        guard avx2 else { return }
        defer { DepthwiseConvChannelTiles.allowWide = true }
        var rng = TestRNG(256)
        let cases: [(x: [Int], k: Int, stride: Int, padding: Int, dilation: Int, bias: Bool)] = [
            ([2, 21, 8, 8], 3, 1, 1, 1, true), ([1, 21, 9, 7], 5, 2, 2, 1, false), ([3, 9, 4, 4], 3, 1, 2, 2, true),
            ([1, 5, 12, 11], 5, 1, 2, 1, true),
        ]
        for (k, cfg) in cases.enumerated() {
            let c = cfg.x[1]
            let x = rng.tensor(cfg.x).scalars, w = rng.tensor([c, 1, cfg.k, cfg.k]).scalars, b = rng.tensor([c]).scalars
            let g = ConvGeometry(input: cfg.x, weight: [c, 1, cfg.k, cfg.k], stride: (cfg.stride, cfg.stride),
                                 padding: Padding2d(cfg.padding, cfg.padding), dilation: (cfg.dilation, cfg.dilation),
                                 groups: c, op: "test")
            XCTAssertTrue(DepthwiseConvChannelTiles.applies(to: g), "case \(k)")
            func run(wide: Bool) -> [Float] {
                DepthwiseConvChannelTiles.allowWide = wide
                var y = [Float](repeating: .nan, count: g.n * g.cout * g.hw + 3)
                DepthwiseConvChannelTiles.forward(x: x, weight: w, bias: cfg.bias ? b : nil, out: &y, g)
                return y
            }
            let swift = KernelPath.with(.avx2) { run(wide: false) }, ours = KernelPath.with(.avx2) { run(wide: true) }
            XCTAssertTrue(KernelPath.with(.avx2) {
                x.withUnsafeBufferPointer { xp in
                    var y = [Float](repeating: 0, count: g.n * g.cout * g.hw)
                    return DepthwiseConvChannelTiles.forwardWide(x: xp.baseAddress!, weight: w, bias: nil, out: &y, g)
                }
            }, "case \(k): the avx2 path takes the C kernel")
            XCTAssertFalse(swift.prefix(g.n * g.cout * g.hw).contains { $0.isNaN }, "case \(k): every output written")
            assertBitEqual(ours, swift, "case \(k): against the Swift kernel")
        }
    }
}
