import XCTest
import CFinchKernels
@testable import FinchTensor

/// Convolution straight from the definition, in Float64: out[n, co, oh, ow] = b[co] +
/// Σ_{ci in group, i, j} w[co, ci, i, j] · x[n, g·Cg + ci, oh·sh − top + i·dh, ow·sw − left + j·dw].
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: Padding2d,
                         dilation: (Int, Int), groups: Int) -> (shape: [Int], values: [Float]) {
    let (n, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
    let (cout, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let ho = (h + padding.top + padding.bottom - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (wd + padding.left + padding.right - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let coutg = cout / groups
    var out = [Float]()
    for s in 0..<n {
        for co in 0..<cout {
            let grp = co / coutg
            for oh in 0..<ho {
                for ow in 0..<wo {
                    var acc = Double(b?[co] ?? 0)
                    for ci in 0..<cg {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let ih = oh * stride.0 - padding.top + i * dilation.0
                                let iw = ow * stride.1 - padding.left + j * dilation.1
                                guard ih >= 0 && ih < h && iw >= 0 && iw < wd else { continue }
                                acc += Double(w[co, ci, i, j]) * Double(x[s, grp * cg + ci, ih, iw])
                            }
                        }
                    }
                    out.append(Float(acc))
                }
            }
        }
    }
    return ([n, cout, ho, wo], out)
}

final class ConvolutionTests: XCTestCase {
    struct Config {
        var n = 2, c = 3, h = 6, w = 6, cout = 4, kh = 3, kw = 3
        var stride = (1, 1), padding = Padding2d.zero, dilation = (1, 1), groups = 1, bias = true
    }

    private func check(_ cfg: Config, seed: UInt64, gradients: Bool = true,
                       file: StaticString = #filePath, line: UInt = #line) {
        var rng = TestRNG(seed)
        let x = rng.tensor([cfg.n, cfg.c, cfg.h, cfg.w])
        let w = rng.tensor([cfg.cout, cfg.c / cfg.groups, cfg.kh, cfg.kw])
        let b = cfg.bias ? rng.tensor([cfg.cout]) : nil
        let y = conv2d(x, weight: w, bias: b, stride: cfg.stride, padding: cfg.padding,
                       dilation: cfg.dilation, groups: cfg.groups)
        let ref = naiveConv2d(x, w, b, stride: cfg.stride, padding: cfg.padding,
                              dilation: cfg.dilation, groups: cfg.groups)
        XCTAssertEqual(y.shape, ref.shape, file: file, line: line)
        assertClose(y.scalars, ref.values, atol: 1e-5, rtol: 1e-5, file: file, line: line)
        guard gradients else { return }
        // conv is bilinear, so central differences are exact up to Float32 rounding of the loss.
        assertGradients(b.map { [x, w, $0] } ?? [x, w], file: file, line: line) { t in
            conv2d(t[0], weight: t[1], bias: cfg.bias ? t[2] : nil, stride: cfg.stride, padding: cfg.padding,
                   dilation: cfg.dilation, groups: cfg.groups)
        }
    }

    func testPlain3x3() {
        check(Config(padding: Padding2d(1, 1)), seed: 1)
        check(Config(bias: false), seed: 2)
    }

    func testStride2Padding1() {
        check(Config(h: 7, w: 7, stride: (2, 2), padding: Padding2d(1, 1)), seed: 3)
    }

    func testDilation2() {
        check(Config(h: 7, w: 7, padding: Padding2d(2, 2), dilation: (2, 2)), seed: 4)
    }

    func testGroups2() {
        check(Config(c: 4, cout: 6, padding: Padding2d(1, 1), groups: 2), seed: 5)
        check(Config(c: 4, h: 7, w: 5, cout: 2, stride: (2, 1), padding: Padding2d(1, 0), groups: 2, bias: false),
              seed: 6)
    }

    func testRectangularKernelAndInput() {
        check(Config(h: 5, w: 7, kh: 2, kw: 3, stride: (1, 2), padding: Padding2d(1, 2), dilation: (2, 1)), seed: 7)
    }

    func testDepthwise() {
        // Every case through every kernel: rows vectorised along the plane (backward in C on AVX-512
        // CPUs, and in Swift with the generic kernels), channel tiles in Swift, and channel tiles in C
        // (AVX-512 only; on other CPUs those passes repeat the Swift ones).
        let saved = DepthwiseConvChannelTiles.maxOutputWidth
        let native = String(cString: finch_kernels_isa())
        defer {
            DepthwiseConvChannelTiles.maxOutputWidth = saved
            DepthwiseConvChannelTiles.allowWide = true
            _ = finch_kernels_use(native)
        }
        defer { DepthwiseConv.allowDirect = true }
        for (limit, wide, isa, direct) in [(0, false, native, true), (0, false, native, false), (0, false, "generic", true),
                                           (1 << 30, false, native, true), (1 << 30, true, native, true)] {
            DepthwiseConvChannelTiles.maxOutputWidth = limit
            DepthwiseConvChannelTiles.allowWide = wide
            DepthwiseConv.allowDirect = direct
            XCTAssertEqual(finch_kernels_use(isa), 1)
            depthwiseCases()
        }
    }

    /// Stride-1 rows read in place by the C kernel give the bits the packed rows give (same
    /// operations in the same order), for 3×3 interiors and borders, wider and dilated kernels.
    func testDepthwiseDirectRowsEqualPacked() {
        // The kernel declines column stride 2, and everything without AVX-512 (then every plane is packed).
        let plane = [Float](repeating: 1, count: 16), weight = [Float](repeating: 1, count: 9)
        var out = [Float](repeating: 0, count: 16)
        for (columnStride1, isa) in [(0, "avx512"), (1, "generic")] {
            let geometry = [3, 3, 1, 1, 1, 1, 4, 4, 4, 6, 6, 2, columnStride1, 4, 1]
            let native = String(cString: finch_kernels_isa())
            defer { _ = finch_kernels_use(native) }
            guard finch_kernels_use(isa) == 1 else { continue }
            XCTAssertEqual(finch_depthwise_forward_direct(plane, weight, 0, &out, geometry), 0, isa)
        }
        guard String(cString: finch_kernels_isa()) == "avx512" else { return }
        let saved = DepthwiseConvChannelTiles.maxOutputWidth
        defer {
            DepthwiseConvChannelTiles.maxOutputWidth = saved
            DepthwiseConv.allowDirect = true
        }
        DepthwiseConvChannelTiles.maxOutputWidth = 0
        let cases: [Config] = [
            Config(n: 2, c: 3, h: 6, w: 37, cout: 3, padding: Padding2d(1, 1), groups: 3),
            Config(n: 1, c: 2, h: 7, w: 20, cout: 2, kh: 5, kw: 5, stride: (2, 1), padding: Padding2d(2, 2), groups: 2),
            Config(n: 1, c: 2, h: 6, w: 18, cout: 2, kh: 2, kw: 4, padding: Padding2d(top: 1, bottom: 0, left: 3, right: 1),
                   dilation: (1, 2), groups: 2),
            Config(n: 1, c: 2, h: 5, w: 17, cout: 2, groups: 2),
        ]
        var rng = TestRNG(31)
        for cfg in cases {
            let x = rng.tensor([cfg.n, cfg.c, cfg.h, cfg.w]), w = rng.tensor([cfg.cout, 1, cfg.kh, cfg.kw])
            let b = rng.tensor([cfg.cout])
            func run(_ direct: Bool) -> [Float] {
                DepthwiseConv.allowDirect = direct
                return conv2d(x, weight: w, bias: b, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation,
                              groups: cfg.groups).scalars
            }
            XCTAssertEqual(run(true), run(false), "\(cfg.h)×\(cfg.w), kernel \(cfg.kh)×\(cfg.kw)")
        }
    }

    private func depthwiseCases() {
        // Eleven channels: one full block of eight lanes and a partial one; 19: one of sixteen and a partial one.
        check(Config(n: 2, c: 19, h: 6, w: 5, cout: 19, kh: 3, kw: 3, stride: (1, 1),
                     padding: Padding2d(1, 1), groups: 19, bias: false), seed: 28)
        check(Config(n: 2, c: 11, h: 6, w: 5, cout: 11, kh: 5, kw: 5, stride: (2, 2),
                     padding: Padding2d(top: 1, bottom: 2, left: 2, right: 1), groups: 11), seed: 27)
        check(Config(c: 4, cout: 4, padding: Padding2d(1, 1), groups: 4), seed: 8)
        check(Config(c: 3, h: 7, w: 7, cout: 3, stride: (2, 2), padding: Padding2d(1, 1), groups: 3), seed: 9)
        check(Config(c: 2, h: 7, w: 7, cout: 2, kh: 5, kw: 5, stride: (2, 2), padding: Padding2d(2, 2), groups: 2,
                     bias: false), seed: 10)
        // No padding, dilation, stride 3 (several phases), rectangular kernel.
        check(Config(c: 2, h: 7, w: 7, cout: 2, kh: 2, kw: 3, stride: (3, 3), dilation: (2, 2), groups: 2), seed: 11)
        check(Config(c: 3, h: 6, w: 7, cout: 3, kh: 3, kw: 1, stride: (1, 2), padding: Padding2d(0, 1), groups: 3),
              seed: 12)
        // Stride-1 kernels wider than three taps (fused triple plus remainder in the dx gather).
        check(Config(c: 2, h: 6, w: 7, cout: 2, kh: 2, kw: 4, padding: Padding2d(1, 3), dilation: (1, 2), groups: 2),
              seed: 25)
        // Stride 1 on rows of several vectors with a partial one (37 = 2·16 + 5).
        check(Config(n: 1, c: 2, h: 4, w: 37, cout: 2, padding: Padding2d(1, 1), groups: 2), seed: 29)
        // Stride 2 on a row long enough for the vectorised de-interleave.
        check(Config(n: 1, c: 2, h: 5, w: 21, cout: 2, stride: (2, 2), padding: Padding2d(1, 1), groups: 2), seed: 26)
    }

    /// Large planes go through im2col in bands of output rows, forward and for dW, with a dW per
    /// part summed at the end; a small band budget sends a small shape that way.
    func testBandedIm2col() {
        let savedBand = ConvKernels.bandBudget, savedThreads = Parallel.threads
        defer { ConvKernels.bandBudget = savedBand; Parallel.setThreads(savedThreads) }
        ConvKernels.bandBudget = 250
        Parallel.setThreads(2)
        var cfg = Config(n: 3, c: 5, h: 9, w: 7, cout: 4)
        cfg.stride = (2, 2)
        cfg.padding = Padding2d(1, 1)
        let g = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, cfg.kh, cfg.kw],
                             stride: cfg.stride, padding: cfg.padding, dilation: (1, 1), groups: 1, op: "test")
        XCTAssertEqual(ConvKernels.bandRows(g), 2, "bands of two output rows (2, 2, 1)")
        check(cfg, seed: 71)
        cfg.bias = false
        check(cfg, seed: 72)
    }

    /// 3×3 stride-1 convolutions through Winograd F(2×2, 3×3) (forward and dx) against the
    /// definition: odd and even output sizes (partial tiles), every padding from 0 to 2 per side,
    /// chunking over samples; and the same cases through im2col agree with it.
    func testWinograd() {
        let saved = (WinogradConv.minimumChannels, WinogradConv.budget, WinogradConv.minimumPlane)
        defer { (WinogradConv.minimumChannels, WinogradConv.budget, WinogradConv.minimumPlane) = saved }
        WinogradConv.minimumChannels = 1
        WinogradConv.minimumPlane = 1
        WinogradConv.budget = 16 * 5 * 9  // a few tiles' worth: several sample chunks
        defer { WinogradConv.allowWide = true }
        let cases: [Config] = [
            Config(n: 3, c: 3, h: 7, w: 6, cout: 5, padding: Padding2d(1, 1)),
            Config(n: 2, c: 4, h: 6, w: 7, cout: 2, bias: false),
            Config(n: 2, c: 2, h: 5, w: 5, cout: 3, padding: Padding2d(top: 0, bottom: 2, left: 2, right: 1)),
            Config(n: 1, c: 3, h: 4, w: 9, cout: 4, padding: Padding2d(top: 1, bottom: 0, left: 0, right: 1)),
            // Wide enough for the four-tiles-per-vector loops, with a ragged remainder.
            Config(n: 2, c: 2, h: 6, w: 21, cout: 3, padding: Padding2d(1, 1)),
            // Rows of 4 and 8 tiles (several rows per AVX-512 vector, odd tile-row counts), and
            // rows of 17 tiles (a full vector and a one-tile remainder).
            Config(n: 1, c: 2, h: 9, w: 8, cout: 2, padding: Padding2d(1, 1)),
            Config(n: 1, c: 2, h: 5, w: 16, cout: 3, padding: Padding2d(top: 1, bottom: 0, left: 1, right: 1)),
            Config(n: 1, c: 2, h: 3, w: 34, cout: 2, padding: Padding2d(1, 1)),
        ]
        let savedBlocks = (WinogradConv.blockBudget, WinogradConv.minimumBlockTiles)
        defer { (WinogradConv.blockBudget, WinogradConv.minimumBlockTiles) = savedBlocks }
        // Swift transforms, then the AVX-512 ones where the CPU has them (else the same again); each
        // through sample chunks with split GEMMs and through one-sample blocks per thread.
        for (wide, blocks) in [(false, false), (false, true), (true, false), (true, true)] {
            WinogradConv.allowWide = wide
            WinogradConv.blockBudget = 1
            WinogradConv.minimumBlockTiles = blocks ? 1 : Int.max
            for (k, cfg) in cases.enumerated() {
                var geometry = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, 3, 3],
                                            stride: (1, 1), padding: cfg.padding, dilation: (1, 1), groups: 1,
                                            op: "test")
                XCTAssertTrue(WinogradConv.applies(to: geometry) && WinogradConv.appliesToInputGradient(geometry))
                XCTAssertEqual(WinogradConv.blockSamples(geometry) != nil, blocks && cfg.n >= Parallel.threads)
                check(cfg, seed: 40 + UInt64(k))
                geometry = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, 3, 3],
                                        stride: (2, 2), padding: cfg.padding, dilation: (1, 1), groups: 1, op: "test")
                XCTAssertFalse(WinogradConv.applies(to: geometry))
            }
        }
        // Realistic sizes: 16 channels on a 9×19 map, against the im2col path on the same data.
        var rng = TestRNG(50)
        let x = rng.tensor([2, 16, 9, 19]), w = rng.tensor([16, 16, 3, 3]), b = rng.tensor([16])
        let upstream = rng.tensor([2, 16, 9, 19], requiresGrad: false)
        func run(_ winograd: Bool) -> [[Float]] {
            WinogradConv.minimumChannels = winograd ? 1 : Int.max
            for t in [x, w, b] { t.grad = nil }
            let y = conv2d(x, weight: w, bias: b, padding: (1, 1))
            (y * upstream).sum().backward()
            return [y.scalars, x.grad!.scalars, w.grad!.scalars]
        }
        let direct = run(false)
        for blocks in [false, true] {
            WinogradConv.minimumBlockTiles = blocks ? 1 : Int.max
            let fast = run(true)
            for (a, d) in zip(fast, direct) { assertClose(a, d, atol: 2e-5, rtol: 2e-5) }
            XCTAssertNotEqual(fast[0], direct[0], "both runs took the same path")
        }
    }

    /// The Winograd transforms on their own, Swift and AVX-512 (where the CPU has it), against
    /// Bᵀ·d·B, Aᵀ·M·A, A·dY·Aᵀ and G·g·Gᵀ computed from the definition in Float64, and the two
    /// input, gradient and weight transforms against each other bit for bit (same operations in
    /// the same order). Planes give rows of 3,
    /// 4, 8, 16 and 17 tiles, odd and even output sizes, padding 0 to 2.
    func testWinogradTransforms() {
        defer { WinogradConv.allowWide = true }
        let bt: [[Double]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        let at: [[Double]] = [[1, 1, 1, 0], [0, 1, -1, -1]]
        let planes: [(h: Int, w: Int, padding: Padding2d)] = [
            (5, 6, Padding2d(1, 1)), (8, 8, Padding2d(1, 1)), (7, 7, Padding2d(top: 2, bottom: 0, left: 0, right: 2)),
            (16, 16, Padding2d(1, 1)), (9, 15, Padding2d(top: 0, bottom: 1, left: 1, right: 2)),
            (6, 32, Padding2d(1, 1)), (4, 35, Padding2d(top: 1, bottom: 1, left: 2, right: 0)),
        ]
        var rng = TestRNG(70)
        for (k, p) in planes.enumerated() {
            let (n, c, cout) = (2, 3, 2)
            let g = ConvGeometry(input: [n, c, p.h, p.w], weight: [cout, c, 3, 3], stride: (1, 1), padding: p.padding,
                                 dilation: (1, 1), groups: 1, op: "test")
            let th = (g.ho + 1) / 2, tw = (g.wo + 1) / 2, tiles = th * tw, cols = n * tiles
            let x = (0..<(n * c * p.h * p.w)).map { _ in rng.uniform() }
            func pixel(_ s: Int, _ ci: Int, _ r: Int, _ q: Int) -> Double {
                r < 0 || r >= p.h || q < 0 || q >= p.w ? 0 : Double(x[((s * c + ci) * p.h + r) * p.w + q])
            }
            var expectedV = [Float](repeating: 0, count: 16 * c * cols)
            for s in 0..<n { for ci in 0..<c { for ty in 0..<th { for tx in 0..<tw {
                for a in 0..<4 { for b in 0..<4 {
                    var acc = 0.0
                    for i in 0..<4 { for j in 0..<4 {
                        acc += bt[a][i] * pixel(s, ci, 2 * ty - g.pt + i, 2 * tx - g.pl + j) * bt[b][j]
                    } }
                    expectedV[((4 * a + b) * c + ci) * cols + s * tiles + ty * tw + tx] = Float(acc)
                } }
            } } } }
            let m = (0..<(16 * cout * cols)).map { _ in rng.uniform() }, bias = [Float(0.25), -0.5]
            var expectedY = [Float](repeating: 0, count: n * cout * g.hw)
            for s in 0..<n { for co in 0..<cout { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let t = s * tiles + (oy / 2) * tw + ox / 2
                var acc = Double(bias[co])
                for i in 0..<4 { for j in 0..<4 {
                    acc += at[oy % 2][i] * Double(m[((4 * i + j) * cout + co) * cols + t]) * at[ox % 2][j]
                } }
                expectedY[((s * cout + co) * g.ho + oy) * g.wo + ox] = Float(acc)
            } } } }

            let dy = (0..<(n * cout * g.hw)).map { _ in rng.uniform() }
            var expectedG = [Float](repeating: 0, count: 16 * cout * cols)
            for s in 0..<n { for co in 0..<cout { for ty in 0..<th { for tx in 0..<tw {
                for a in 0..<4 { for b in 0..<4 {
                    var acc = 0.0
                    for i in 0..<2 where 2 * ty + i < g.ho { for j in 0..<2 where 2 * tx + j < g.wo {
                        acc += at[i][a] * Double(dy[((s * cout + co) * g.ho + 2 * ty + i) * g.wo + 2 * tx + j]) * at[j][b]
                    } }
                    expectedG[((4 * a + b) * cout + co) * cols + s * tiles + ty * tw + tx] = Float(acc)
                } }
            } } } }

            var inputs: [[Float]] = [], outputs: [[Float]] = [], gradients: [[Float]] = []
            for wide in [false, true] {
                WinogradConv.allowWide = wide
                var v = [Float](repeating: .nan, count: 16 * c * cols)
                var y = [Float](repeating: .nan, count: n * cout * g.hw)
                x.withUnsafeBufferPointer { xp in
                    v.withUnsafeMutableBufferPointer {
                        WinogradConv.inputTransform(xp.baseAddress!, g, n0: 0, nb: n, th: th, tw: tw, stride: c * cols,
                                                    into: $0.baseAddress!)
                    }
                }
                m.withUnsafeBufferPointer { mp in
                    bias.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer {
                            WinogradConv.outputTransform(mp.baseAddress!, g, n0: 0, nb: n, th: th, tw: tw,
                                                         stride: cout * cols, bias: bp.baseAddress!,
                                                         into: $0.baseAddress!)
                        }
                    }
                }
                var mt = [Float](repeating: .nan, count: 16 * cout * cols)
                dy.withUnsafeBufferPointer { dp in
                    mt.withUnsafeMutableBufferPointer {
                        WinogradConv.gradientTransform(dp.baseAddress!, g, n0: 0, nb: n, th: th, tw: tw,
                                                       stride: cout * cols, into: $0.baseAddress!)
                    }
                }
                assertClose(mt, expectedG, atol: 1e-6, rtol: 1e-6)
                gradients.append(mt)
                assertClose(v, expectedV, atol: 1e-6, rtol: 1e-6)
                assertClose(y, expectedY, atol: 1e-5, rtol: 1e-6)
                inputs.append(v)
                outputs.append(y)
            }
            XCTAssertEqual(inputs[0], inputs[1], "plane \(k): the two input transforms differ")
            XCTAssertEqual(gradients[0], gradients[1], "plane \(k): the two gradient transforms differ")
            assertClose(outputs[0], outputs[1], atol: 1e-6, rtol: 1e-6)
        }
        // Weights: 37 filters (two vectors of sixteen and a partial one) against G·g·Gᵀ.
        let gm: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let filters = 37, w = (0..<(filters * 9)).map { _ in rng.uniform() }
        var expectedU = [Float](repeating: 0, count: 16 * filters)
        for f in 0..<filters { for a in 0..<4 { for b in 0..<4 {
            var acc = 0.0
            for i in 0..<3 { for j in 0..<3 { acc += gm[a][i] * Double(w[f * 9 + 3 * i + j]) * gm[b][j] } }
            expectedU[(4 * a + b) * filters + f] = Float(acc)
        } } }
        var transformed: [[Float]] = []
        for wide in [false, true] {
            WinogradConv.allowWide = wide
            var u = [Float](repeating: .nan, count: 16 * filters)
            w.withUnsafeBufferPointer { wp in
                u.withUnsafeMutableBufferPointer {
                    WinogradConv.transformWeights(wp.baseAddress!, cout: filters, cin: 1, into: $0.baseAddress!)
                }
            }
            assertClose(u, expectedU, atol: 1e-6, rtol: 1e-6)
            transformed.append(u)
        }
        XCTAssertEqual(transformed[0], transformed[1], "the two weight transforms differ")
    }

    /// Convolutions with few input channels (the RGB stems) through the direct kernel and through
    /// im2col, each against the definition (forward only: the kernel has no backward of its own,
    /// and the im2col backward is checked by the other tests, many of which have three channels
    /// and so now run their forward through this kernel): a 3×3 stride-2 stem with 18 output
    /// channels (a block of sixteen and a partial one) and rows of 19 outputs (a vector and a
    /// remainder), TF-style asymmetric padding, mixed strides, a 3×1 kernel, one input channel.
    func testFewChannelConv() {
        defer { FewChannelConv.allowWide = true }
        let cases: [Config] = [
            Config(n: 1, c: 3, h: 5, w: 37, cout: 18, stride: (2, 2), padding: Padding2d(1, 1)),
            Config(n: 2, c: 3, h: 7, w: 8, cout: 5, stride: (2, 2),
                   padding: Padding2d.tfSame(inputSize: (7, 8), kernelSize: (3, 3), stride: (2, 2))),
            Config(n: 1, c: 2, h: 6, w: 35, cout: 3, stride: (1, 2), padding: Padding2d(1, 0), bias: false),
            Config(n: 2, c: 1, h: 5, w: 18, cout: 17, kh: 1, kw: 3, stride: (2, 1), padding: Padding2d(0, 2)),
            Config(n: 1, c: 4, h: 4, w: 4, cout: 2, kh: 3, kw: 1, padding: Padding2d(1, 0)),
        ]
        for wide in [false, true] {
            FewChannelConv.allowWide = wide
            for (k, cfg) in cases.enumerated() {
                let g = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, cfg.kh, cfg.kw],
                                     stride: cfg.stride, padding: cfg.padding, dilation: (1, 1), groups: 1, op: "test")
                XCTAssertTrue(FewChannelConv.applies(to: g))
                check(cfg, seed: 80 + UInt64(k), gradients: false)
            }
        }
        let strided = ConvGeometry(input: [1, 3, 9, 9], weight: [4, 3, 3, 3], stride: (3, 3), padding: .zero,
                                   dilation: (1, 1), groups: 1, op: "test")
        XCTAssertFalse(FewChannelConv.applies(to: strided), "column stride 3 has no vector form")
        let resnetStem = ConvGeometry(input: [1, 3, 16, 16], weight: [64, 3, 7, 7], stride: (2, 2),
                                      padding: Padding2d(3, 3), dilation: (1, 1), groups: 1, op: "test")
        XCTAssertFalse(FewChannelConv.applies(to: resnetStem), "7×7 stems stay on im2col")
    }

    /// 1×1 convolutions on small planes through the AVX-512 kernel and through the column path,
    /// against the definition: planes of one, two, three, four and seven pixel vectors (4×4, 5×5,
    /// 6×6, 8×8, 10×10), output-channel counts that leave partial blocks of 16, 12, 8 and 6 rows.
    func testSmallPlanePointwise() {
        defer { SmallPlanePointwiseConv.allowWide = true }
        let cases: [Config] = [
            Config(n: 2, c: 5, h: 4, w: 4, cout: 19, kh: 1, kw: 1),
            Config(n: 1, c: 3, h: 5, w: 5, cout: 13, kh: 1, kw: 1, bias: false),
            Config(n: 2, c: 4, h: 6, w: 6, cout: 9, kh: 1, kw: 1),
            Config(n: 1, c: 7, h: 8, w: 8, cout: 7, kh: 1, kw: 1),
            Config(n: 1, c: 2, h: 10, w: 10, cout: 3, kh: 1, kw: 1),
        ]
        for wide in [false, true] {
            SmallPlanePointwiseConv.allowWide = wide
            for (k, cfg) in cases.enumerated() {
                let g = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, 1, 1],
                                     stride: (1, 1), padding: .zero, dilation: (1, 1), groups: 1, op: "test")
                XCTAssertTrue(SmallPlanePointwiseConv.applies(to: g))
                check(cfg, seed: 90 + UInt64(k), gradients: k == 0)
            }
        }
    }

    func testDepthwiseChannelMultiplier() {
        check(Config(c: 2, cout: 4, padding: Padding2d(1, 1), groups: 2), seed: 13)
    }

    func testPointwise() {
        // Both the per-sample GEMM path and the batched column path for 1×1 convolutions.
        let saved = ConvKernels.pointwiseDirectMinPlane
        defer { ConvKernels.pointwiseDirectMinPlane = saved }
        for threshold in [1, 1 << 30] {
            ConvKernels.pointwiseDirectMinPlane = threshold
            check(Config(c: 4, h: 5, w: 5, cout: 3, kh: 1, kw: 1), seed: 14)
            check(Config(c: 4, h: 4, w: 5, cout: 6, kh: 1, kw: 1, groups: 2, bias: false), seed: 15)
        }
        check(Config(c: 4, h: 7, w: 7, cout: 3, kh: 1, kw: 1, stride: (2, 2)), seed: 16)
    }

    func testAsymmetricAndSamePadding() {
        let p = Padding2d.tfSame(inputSize: (7, 8), kernelSize: (3, 3), stride: (2, 2))
        XCTAssertEqual(p, Padding2d(top: 1, bottom: 1, left: 0, right: 1))
        XCTAssertEqual(Padding2d.tfSame(inputSize: (6, 6), kernelSize: (5, 5), stride: (1, 1)), Padding2d(2, 2))
        XCTAssertEqual(Padding2d.tfSame(inputSize: (4, 4), kernelSize: (1, 1), stride: (2, 2)), Padding2d.zero)
        XCTAssertEqual(Padding2d.tfSame(inputSize: (5, 5), kernelSize: (3, 3), stride: (1, 1), dilation: (2, 2)),
                       Padding2d(2, 2))

        check(Config(h: 7, w: 8, stride: (2, 2), padding: p), seed: 17)
        check(Config(c: 3, h: 6, w: 6, cout: 3, stride: (2, 2), padding: Padding2d(top: 0, bottom: 1, left: 0, right: 1),
                     groups: 3), seed: 18)
        check(Config(c: 2, h: 5, w: 6, cout: 2, kh: 5, kw: 5, padding: Padding2d(top: 1, bottom: 3, left: 2, right: 2),
                     groups: 2), seed: 19)

        var rng = TestRNG(20)
        let x = rng.tensor([1, 2, 7, 8]), w = rng.tensor([3, 2, 3, 3])
        let y = conv2dSame(x, weight: w, stride: (2, 2))
        XCTAssertEqual(y.shape, [1, 3, 4, 4])  // ceil(7/2) × ceil(8/2)
        let ref = naiveConv2d(x, w, nil, stride: (2, 2), padding: p, dilation: (1, 1), groups: 1)
        assertClose(y.scalars, ref.values)
    }

    func testBatchChunking() {
        // Budgets that fit one sample per chunk (direct write) and two (scatter, with a remainder chunk).
        let saved = ConvKernels.columnBudget
        defer { ConvKernels.columnBudget = saved }
        let perSample = 3 * 9 * 5 * 5
        for budget in [perSample, 2 * perSample] {
            ConvKernels.columnBudget = budget
            check(Config(n: 3, h: 5, w: 5, padding: Padding2d(1, 1)), seed: 21)
            check(Config(n: 3, c: 4, h: 5, w: 5, cout: 2, padding: Padding2d(1, 1), groups: 2, bias: false), seed: 22)
        }
    }

    func testNonContiguousInputs() {
        var rng = TestRNG(23)
        let xt = rng.tensor([2, 3, 6, 5])
        let wt = rng.tensor([3, 4, 3, 3])
        // Transposed views: H/W swapped input, Cin/Cout swapped weight.
        let x = xt.transposed(2, 3), w = wt.transposed(0, 1)
        XCTAssertFalse(x.isContiguous)
        let y = conv2d(x, weight: w, padding: (1, 1))
        let ref = naiveConv2d(x.copy(), w.copy(), nil, stride: (1, 1), padding: Padding2d(1, 1),
                              dilation: (1, 1), groups: 1)
        assertClose(y.scalars, ref.values)
        assertGradients([xt, wt]) { t in conv2d(t[0].transposed(2, 3), weight: t[1].transposed(0, 1), padding: (1, 1)) }
    }

    func testOnlyRequestedGradients() {
        var rng = TestRNG(24)
        let x = rng.tensor([2, 3, 5, 5], requiresGrad: false)
        let w = rng.tensor([4, 3, 3, 3])
        let b = rng.tensor([4], requiresGrad: false)
        conv2d(x, weight: w, bias: b, padding: (1, 1)).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertNil(b.grad)
        XCTAssertEqual(w.grad?.shape, [4, 3, 3, 3])
        // d(Σy)/dw[co, ci, i, j] is the sum of the input window that tap meets.
        var expected = [Float](repeating: 0, count: 3 * 9)
        for ci in 0..<3 {
            for i in 0..<3 {
                for j in 0..<3 {
                    var s: Float = 0
                    for s0 in 0..<2 {
                        for oh in 0..<5 {
                            for ow in 0..<5 {
                                let ih = oh - 1 + i, iw = ow - 1 + j
                                if ih >= 0 && ih < 5 && iw >= 0 && iw < 5 { s += x[s0, ci, ih, iw] }
                            }
                        }
                    }
                    expected[ci * 9 + i * 3 + j] = s
                }
            }
        }
        for co in 0..<4 {
            assertClose(Array(w.grad!.scalars[(co * 27)..<((co + 1) * 27)]), expected, atol: 1e-4)
        }
    }
}
