import XCTest
import CFinchKernels
@testable import FinchTensor

/// Winograd F(4×4, 3×3): its matrices against the definition of correlation, each AVX-512 transform
/// against the matrices in Float64, and whole convolutions (forward, dx, dW) against the Float64
/// definition and finite differences. Without AVX-512 or AVX2 the tile is never chosen, which is checked.
final class WinogradF4Tests: XCTestCase {
    // The points 0, ⅔, −⅔, 3⁄2, −3⁄2, ∞ (WinogradF4Transforms.c), rows of Bᵀ scaled to integers.
    let bt: [[Double]] = [[36, 0, -97, 0, 36, 0], [0, 18, 27, -8, -12, 0], [0, -18, 27, 8, -12, 0],
                          [0, -12, -8, 27, 18, 0], [0, 12, -8, -27, 18, 0], [0, 36, 0, -97, 0, 36]]
    let at: [[Double]] = [[1, 1, 1, 1, 1, 0], [0, 2.0 / 3, -2.0 / 3, 1.5, -1.5, 0], [0, 4.0 / 9, 4.0 / 9, 2.25, 2.25, 0],
                          [0, 8.0 / 27, -8.0 / 27, 3.375, -3.375, 1]]
    let gm: [[Double]] = [[1.0 / 36, 0, 0], [27.0 / 520, 9.0 / 260, 3.0 / 130], [27.0 / 520, -9.0 / 260, 3.0 / 130],
                          [4.0 / 585, 2.0 / 195, 1.0 / 65], [4.0 / 585, -2.0 / 195, 1.0 / 65], [0, 0, 1.0 / 36]]

    private var wide: Bool { KernelPath.active >= .avx2 }

    /// Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A is the 4×4 correlation of a 6×6 block with a 3×3 filter.
    func testMatricesComputeCorrelation() {
        var rng = TestRNG(90)
        let d = (0..<36).map { _ in Double(rng.uniform()) }, g = (0..<9).map { _ in Double(rng.uniform()) }
        var u = [Double](repeating: 0, count: 36), v = [Double](repeating: 0, count: 36)
        for a in 0..<6 { for b in 0..<6 {
            for i in 0..<3 { for j in 0..<3 { u[6 * a + b] += gm[a][i] * g[3 * i + j] * gm[b][j] } }
            for i in 0..<6 { for j in 0..<6 { v[6 * a + b] += bt[a][i] * d[6 * i + j] * bt[b][j] } }
        } }
        for y in 0..<4 { for x in 0..<4 {
            var winograd = 0.0, direct = 0.0
            for i in 0..<6 { for j in 0..<6 { winograd += at[y][i] * u[6 * i + j] * v[6 * i + j] * at[x][j] } }
            for i in 0..<3 { for j in 0..<3 { direct += d[6 * (y + i) + x + j] * g[3 * i + j] } }
            XCTAssertEqual(winograd, direct, accuracy: 1e-12)
        } }
    }

    /// The tile is chosen where it costs less, only with the AVX-512 or AVX2 transforms, and not when
    /// switched off.
    func testTileChoice() {
        defer { WinogradConv.largeTiles = true; WinogradConv.allowWide = true }
        func geometry(_ n: Int, _ h: Int, _ w: Int) -> ConvGeometry {
            ConvGeometry(input: [n, 16, h, w], weight: [16, 16, 3, 3], stride: (1, 1), padding: Padding2d(1, 1),
                         dilation: (1, 1), groups: 1, op: "test")
        }
        XCTAssertEqual(WinogradConv.tiles(for: geometry(32, 16, 16)), wide ? .four : .two)
        XCTAssertEqual(WinogradConv.tiles(for: geometry(32, 8, 9)), wide ? .four : .two)
        // Batch 1 on 8×8: 16 tiles of 2×2 against 4 of 4×4 do not pay for the larger weight transform.
        XCTAssertEqual(WinogradConv.tiles(for: geometry(1, 8, 8)), .two)
        // 6×6: nine 2×2 tiles (144 multiplies) against four 4×4 tiles that overhang (144).
        XCTAssertEqual(WinogradConv.tiles(for: geometry(32, 6, 6)), .two)
        WinogradConv.largeTiles = false
        XCTAssertEqual(WinogradConv.tiles(for: geometry(32, 16, 16)), .two)
        WinogradConv.largeTiles = true
        WinogradConv.allowWide = false
        XCTAssertEqual(WinogradConv.tiles(for: geometry(32, 16, 16)), .two)
    }

    /// Each transform against the matrices in Float64, on planes whose tiles overhang the edges,
    /// with padding 0 to 2, with fewer than sixteen tiles per plane (a vector spans samples, and
    /// the last group of samples is partial) and with more; on the AVX-512 and the AVX2 kernels.
    func testTransforms() throws {
        guard wide else {
            return XCTAssertEqual(finch_winograd4_weight_transform(nil, 0, nil, 0, 0), 0, "no AVX2, no F(4×4) kernels")
        }
        for path in KernelPath.supported where path >= .avx2 {
            KernelPath.with(path) { checkTransforms() }
        }
    }

    private func checkTransforms() {
        let planes: [(n: Int, h: Int, w: Int, padding: Padding2d)] = [
            (5, 8, 8, Padding2d(1, 1)), (3, 7, 9, Padding2d(top: 2, bottom: 0, left: 0, right: 2)),
            (2, 18, 13, Padding2d(top: 0, bottom: 1, left: 1, right: 2)), (1, 34, 17, Padding2d(1, 1)),
        ]
        var rng = TestRNG(91)
        for (k, p) in planes.enumerated() {
            let (n, c, cout) = (p.n, 3, 2)
            let g = ConvGeometry(input: [n, c, p.h, p.w], weight: [cout, c, 3, 3], stride: (1, 1), padding: p.padding,
                                 dilation: (1, 1), groups: 1, op: "test")
            let th = (g.ho + 3) / 4, tw = (g.wo + 3) / 4, tiles = th * tw, cols = n * tiles
            let chunk = WinogradConv.Chunk(n0: 0, nb: n, th: th, tw: tw, p: cols, vStride: c * cols + 3,
                                           mStride: cout * cols + 5, kind: .four)
            let x = (0..<(n * c * p.h * p.w)).map { _ in rng.uniform() }
            func pixel(_ s: Int, _ ci: Int, _ r: Int, _ q: Int) -> Double {
                r < 0 || r >= p.h || q < 0 || q >= p.w ? 0 : Double(x[((s * c + ci) * p.h + r) * p.w + q])
            }
            var v = [Float](repeating: .nan, count: 36 * chunk.vStride)
            x.withUnsafeBufferPointer { xp in
                v.withUnsafeMutableBufferPointer {
                    WinogradConv.inputTransform(xp.baseAddress!, g, chunk, parallel: true, into: $0.baseAddress!)
                }
            }
            // Every element of a transformed buffer [36, channels, (s, tile)] against L·block·Rᵀ in Float64.
            func checkTiles(_ got: [Float], stride: Int, channels: Int, size: Int, accuracy: Double, _ what: String,
                            left: (Int, Int) -> Double, block: (_ s: Int, _ ch: Int, _ row: Int, _ col: Int) -> Double) {
                for s in 0..<n { for ch in 0..<channels { for ty in 0..<th { for tx in 0..<tw {
                    for a in 0..<6 { for b in 0..<6 {
                        var acc = 0.0, magnitude = 0.0
                        for i in 0..<size { for j in 0..<size {
                            let term = left(a, i) * block(s, ch, 4 * ty + i, 4 * tx + j) * left(b, j)
                            acc += term
                            magnitude += abs(term)
                        } }
                        // Bᵀ's rows (36, 0, −97, 0, 36, 0) cancel: a few float32 ulps of the terms' sum.
                        let value = got[(6 * a + b) * stride + ch * cols + s * tiles + ty * tw + tx]
                        XCTAssertEqual(Double(value), acc, accuracy: accuracy * (1 + abs(acc)) + 1e-6 * magnitude,
                                       "plane \(k) \(what) (\(s), \(ch), \(a), \(b))")
                    } }
                } } } }
            }
            checkTiles(v, stride: chunk.vStride, channels: c, size: 6, accuracy: 2e-5, "input",
                       left: { bt[$0][$1] }, block: { pixel($0, $1, $2 - g.pt, $3 - g.pl) })

            let m = (0..<(36 * chunk.mStride)).map { _ in rng.uniform() }, bias = [Float(0.25), -0.5]
            var y = [Float](repeating: .nan, count: n * cout * g.hw)
            m.withUnsafeBufferPointer { mp in
                bias.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer {
                        WinogradConv.outputTransform(mp.baseAddress!, g, chunk, bias: bp.baseAddress!, epilogue: .none,
                                                     parallel: true, into: $0.baseAddress!)
                    }
                }
            }
            for s in 0..<n { for co in 0..<cout { for oy in 0..<g.ho { for ox in 0..<g.wo {
                let t = s * tiles + (oy / 4) * tw + ox / 4
                var acc = Double(bias[co])
                for i in 0..<6 { for j in 0..<6 {
                    acc += at[oy % 4][i] * Double(m[(6 * i + j) * chunk.mStride + co * cols + t]) * at[ox % 4][j]
                } }
                let got = y[((s * cout + co) * g.ho + oy) * g.wo + ox]
                XCTAssertEqual(Double(got), acc, accuracy: 1e-5 * (1 + abs(acc)), "plane \(k) output (\(s), \(co), \(oy), \(ox))")
            } } } }

            let dy = (0..<(n * cout * g.hw)).map { _ in rng.uniform() }
            var mt = [Float](repeating: .nan, count: 36 * chunk.mStride)
            dy.withUnsafeBufferPointer { dp in
                mt.withUnsafeMutableBufferPointer {
                    WinogradConv.gradientTransform(dp.baseAddress!, g, chunk, parallel: true, into: $0.baseAddress!)
                }
            }
            checkTiles(mt, stride: chunk.mStride, channels: cout, size: 4, accuracy: 1e-5, "gradient",
                       left: { at[$1][$0] }, block: { s, co, r, q in
                           r < g.ho && q < g.wo ? Double(dy[((s * cout + co) * g.ho + r) * g.wo + q]) : 0
                       })
        }

        // Weights and their gradient: 37 filters (two vectors of sixteen and a partial one).
        let filters = 37, w = (0..<(filters * 9)).map { _ in rng.uniform() }
        var u = [Float](repeating: .nan, count: 36 * filters)
        w.withUnsafeBufferPointer { wp in
            u.withUnsafeMutableBufferPointer {
                WinogradConv.transformWeights(wp.baseAddress!, cout: filters, cin: 1, into: $0.baseAddress!, .four)
            }
        }
        let du = (0..<(36 * filters)).map { _ in rng.uniform() }
        var dw = [Float](repeating: .nan, count: 9 * filters)
        du.withUnsafeBufferPointer { dp in
            dw.withUnsafeMutableBufferPointer {
                WinogradConv.weightGradientFromTransformed(dp.baseAddress!, cout: filters, cin: 1, into: $0.baseAddress!,
                                                           .four)
            }
        }
        for f in 0..<filters {
            for a in 0..<6 { for b in 0..<6 {
                var acc = 0.0
                for i in 0..<3 { for j in 0..<3 { acc += gm[a][i] * Double(w[f * 9 + 3 * i + j]) * gm[b][j] } }
                XCTAssertEqual(Double(u[(6 * a + b) * filters + f]), acc, accuracy: 1e-6, "filter \(f) U[\(a), \(b)]")
            } }
            for i in 0..<3 { for j in 0..<3 {
                var acc = 0.0
                for a in 0..<6 { for b in 0..<6 { acc += gm[a][i] * Double(du[(6 * a + b) * filters + f]) * gm[b][j] } }
                XCTAssertEqual(Double(dw[f * 9 + 3 * i + j]), acc, accuracy: 1e-5, "filter \(f) dW[\(i), \(j)]")
            } }
        }
    }

    /// Whole convolutions through F(4×4, 3×3): forward against the Float64 definition and all
    /// gradients by finite differences, through sample chunks with split GEMMs and through blocks
    /// per thread; then 64 channels on a 16×16 map, whose error is bounded against Float64.
    func testConvolution() throws {
        let saved = (WinogradConv.minimumChannels, WinogradConv.minimumPlane, WinogradConv.blockBudget,
                     WinogradConv.minimumBlockTiles, WinogradConv.budget, WinogradConv.weightCost)
        defer {
            (WinogradConv.minimumChannels, WinogradConv.minimumPlane, WinogradConv.blockBudget,
             WinogradConv.minimumBlockTiles, WinogradConv.budget, WinogradConv.weightCost) = saved
        }
        WinogradConv.minimumChannels = 1
        WinogradConv.minimumPlane = 1
        WinogradConv.weightCost = 0  // small batches take F(4×4) too
        WinogradConv.budget = 36 * 7 * 4  // a sample or two per chunk
        let cases: [(n: Int, c: Int, h: Int, w: Int, cout: Int, padding: Padding2d)] = [
            (5, 3, 8, 8, 2, Padding2d(1, 1)),
            (2, 2, 9, 11, 3, Padding2d(top: 0, bottom: 2, left: 2, right: 1)),
            (3, 2, 12, 7, 2, Padding2d(top: 1, bottom: 0, left: 0, right: 1)),
        ]
        for blocks in [false, true] {
            WinogradConv.blockBudget = 1
            WinogradConv.minimumBlockTiles = blocks ? 1 : Int.max
            for (k, cfg) in cases.enumerated() {
                let g = ConvGeometry(input: [cfg.n, cfg.c, cfg.h, cfg.w], weight: [cfg.cout, cfg.c, 3, 3],
                                     stride: (1, 1), padding: cfg.padding, dilation: (1, 1), groups: 1, op: "test")
                XCTAssertEqual(WinogradConv.tiles(for: g), wide ? .four : .two)
                XCTAssertEqual(WinogradConv.blockSamples(g) != nil, blocks && cfg.n >= Parallel.threads)
                var rng = TestRNG(92 + UInt64(k))
                let x = rng.tensor([cfg.n, cfg.c, cfg.h, cfg.w]), w = rng.tensor([cfg.cout, cfg.c, 3, 3])
                let b = rng.tensor([cfg.cout])
                let y = conv2d(x, weight: w, bias: b, padding: cfg.padding)
                let ref = naiveConv2d(x, w, b, stride: (1, 1), padding: cfg.padding, dilation: (1, 1), groups: 1)
                XCTAssertEqual(y.shape, ref.shape)
                assertClose(y.scalars, ref.values, atol: 2e-5, rtol: 2e-5)
                assertGradients([x, w, b]) { t in
                    conv2d(t[0], weight: t[1], bias: t[2], padding: cfg.padding)
                }
            }
        }

        // Realistic size: 64 input channels on a 16×16 map. The error against Float64 stays within
        // a few units of 10⁻⁶ of the outputs' scale (about 4.6 here: 576 products of uniform(−1, 1) pairs).
        WinogradConv.minimumBlockTiles = saved.3
        WinogradConv.blockBudget = saved.2
        WinogradConv.budget = saved.4
        var rng = TestRNG(95)
        let (c, cout, side) = (64, 8, 16)
        let x = rng.tensor([1, c, side, side], requiresGrad: false), w = rng.tensor([cout, c, 3, 3], requiresGrad: false)
        let xs = x.scalars, ws = w.scalars
        var ref = [Double](repeating: 0, count: cout * side * side)
        for co in 0..<cout { for ci in 0..<c { for i in 0..<3 { for j in 0..<3 {
            let weight = Double(ws[((co * c + ci) * 3 + i) * 3 + j])
            for oy in 0..<side where oy + i - 1 >= 0 && oy + i - 1 < side {
                for ox in 0..<side where ox + j - 1 >= 0 && ox + j - 1 < side {
                    ref[(co * side + oy) * side + ox] += weight * Double(xs[(ci * side + oy + i - 1) * side + ox + j - 1])
                }
            }
        } } } }
        func maxError(_ large: Bool) -> Double {
            WinogradConv.largeTiles = large
            defer { WinogradConv.largeTiles = true }
            let y = conv2d(x, weight: w, padding: (1, 1)).scalars
            return zip(y, ref).map { abs(Double($0) - Double($1)) }.max()!
        }
        let four = maxError(true), two = maxError(false)
        XCTAssertLessThan(four, 1e-4, "F(4×4) error \(four)")
        XCTAssertLessThan(two, 2e-5, "F(2×2) error \(two)")
        print("64 channels, 16×16: largest error F(4×4) \(four), F(2×2) \(two)")
    }
    /// The F(4×4) points' rounding, on a ResNet-like 3×3 layer (ReLU'd unit-normal activations,
    /// Kaiming-normal weights; 64 channels on 16×16 and 256 on 8×8), against the Float64 direct
    /// convolution and as a ratio to F(2×2)'s error on the same data, forward and input gradient,
    /// on each wide path. The former points {0, ±1, ½, −2, ∞} measured RMS ratios of 4.2–4.4 here
    /// (largest error 6.6–8.1× F(2×2)'s); {0, ±⅔, ±3⁄2, ∞} measure 2.8–3.1 (largest 3.6–5.8×).
    func testRoundingAgainstDouble() throws {
        guard wide else { return XCTAssertEqual(WinogradConv.tiles(for: ConvGeometry(
            input: [32, 16, 16, 16], weight: [16, 16, 3, 3], stride: (1, 1), padding: Padding2d(1, 1),
            dilation: (1, 1), groups: 1, op: "test")), .two) }
        let saved = (WinogradConv.alwaysLargeTiles, WinogradConv.largeTiles)
        defer { (WinogradConv.alwaysLargeTiles, WinogradConv.largeTiles) = saved }
        for (k, (n, c, side, cout)) in [(2, 64, 16, 16), (4, 256, 8, 16)].enumerated() {
            var rng = TestRNG(300 + UInt64(k))
            func normal() -> Float {
                let u = Swift.max(rng.uniform(0, 1), 1e-7), v = rng.uniform(0, 1)
                return (-2 * logf(u)).squareRoot() * cosf(2 * .pi * v)
            }
            let xs = (0..<(n * c * side * side)).map { _ in Swift.max(normal(), 0) }
            let std = (2 / Float(9 * c)).squareRoot()
            let ws = (0..<(cout * c * 9)).map { _ in normal() * std }
            let dys = (0..<(n * cout * side * side)).map { _ in normal() }
            // Float64 references: y = conv(x, w) and dx = conv_transpose(dy, w), padding 1.
            var y = [Double](repeating: 0, count: dys.count), dx = [Double](repeating: 0, count: xs.count)
            for s in 0..<n { for co in 0..<cout { for ci in 0..<c { for i in 0..<3 { for j in 0..<3 {
                let weight = Double(ws[((co * c + ci) * 3 + i) * 3 + j])
                for oy in 0..<side where oy + i - 1 >= 0 && oy + i - 1 < side {
                    for ox in 0..<side where ox + j - 1 >= 0 && ox + j - 1 < side {
                        let o = ((s * cout + co) * side + oy) * side + ox
                        let q = ((s * c + ci) * side + oy + i - 1) * side + ox + j - 1
                        y[o] += weight * Double(xs[q])
                        dx[q] += weight * Double(dys[o])
                    }
                }
            } } } } }
            /// RMS and largest error, each over the reference's RMS.
            func error(_ got: [Float], _ ref: [Double]) -> (rms: Double, max: Double) {
                let scale = (ref.reduce(0) { $0 + $1 * $1 } / Double(ref.count)).squareRoot()
                let e = zip(got, ref).map { Double($0) - $1 }
                return ((e.reduce(0) { $0 + $1 * $1 } / Double(e.count)).squareRoot() / scale,
                        e.map(abs).max()! / scale)
            }
            func run(_ large: Bool) -> (y: (rms: Double, max: Double), dx: (rms: Double, max: Double)) {
                WinogradConv.largeTiles = large
                WinogradConv.alwaysLargeTiles = large
                let x = Tensor(xs, shape: [n, c, side, side], requiresGrad: true)
                let w = Tensor(ws, shape: [cout, c, 3, 3], requiresGrad: false)
                let g = ConvGeometry(input: x.shape, weight: w.shape, stride: (1, 1), padding: Padding2d(1, 1),
                                     dilation: (1, 1), groups: 1, op: "test")
                XCTAssertEqual(WinogradConv.tiles(for: g), large ? .four : .two)
                let out = conv2d(x, weight: w, padding: (1, 1))
                (out * Tensor(dys, shape: out.shape)).sum().backward()
                return (error(out.scalars, y), error(x.grad!.scalars, dx))
            }
            for path in KernelPath.supported where path >= .avx2 {
                let (four, two) = KernelPath.with(path) { (run(true), run(false)) }
                let what = "\(path), \(c) channels on \(side)×\(side)"
                print("\(what): F(4×4) / F(2×2) error, RMS y \(four.y.rms / two.y.rms) dx \(four.dx.rms / two.dx.rms), "
                      + "largest y \(four.y.max / two.y.max) dx \(four.dx.max / two.dx.max); F(2×2) RMS \(two.y.rms)")
                XCTAssertLessThan(two.y.rms, 1e-6, what)
                XCTAssertLessThan(four.y.rms, 3.5 * two.y.rms, what)
                XCTAssertLessThan(four.dx.rms, 3.5 * two.dx.rms, what)
                XCTAssertLessThan(four.y.max, 7 * two.y.max, what)
                XCTAssertLessThan(four.dx.max, 7 * two.dx.max, what)
            }
        }
    }
}
