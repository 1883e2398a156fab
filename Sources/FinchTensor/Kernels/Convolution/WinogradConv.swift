// 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, 2015).
//
// Each 2×2 block of output is computed from a 4×4 block of input with 16 multiplies per
// (input channel, output channel) pair instead of 36: the input tile d and the filter g are
// transformed (V = Bᵀ·d·B, U = G·g·Gᵀ), multiplied element by element, and transformed back
// (Y = Aᵀ·M·A). Summed over input channels, the 16 element-wise products become 16 GEMMs
// [Cout, Cin] × [Cin, tiles], so BLAS still does the arithmetic, on 2.25× fewer operations
// than im2col's single GEMM. ResNet's and MobileViT's 3×3 convolutions spent most of their
// time in that GEMM.
//
// The transforms only add, subtract and halve, so the result differs from direct convolution
// by a few units in the last place of the largest terms (the tests bound it).
//
// Where the AVX-512 or AVX2 kernels exist, F(4×4, 3×3) (WinogradConvF4.swift) takes the planes on which it
// needs fewer multiplies: 36 GEMMs on a quarter of the tiles, 4× fewer operations than im2col.
// Everything here but the transforms is shared: a `Chunk` carries its tile, and the transformed
// buffers hold `Tiles.count` matrices.

import CFinchKernels

enum WinogradConv {
    /// Channel counts below this stay on the im2col path: the 16 GEMMs would be too thin.
    static var minimumChannels = 16

    /// Output planes of at least this many pixels take Winograd whatever the batch. Smaller ones
    /// (ResNet's last stage: 4×4 at 128 px, 7×7 at 224) take it only where `cheaperThanColumns`
    /// says so: with few tiles per weight, transforming the weights on every call can cost more
    /// than the multiplies saved (batch 1 and 8), while at batch 32 ResNet18's 4×4 planes with
    /// F(2×2) measured 9% faster training and 15% faster evaluation than im2col on avx512 (6% and
    /// 8% on avx2; medians of three alternating runs, two threads).
    static var minimumPlane = 64

    static func applies(to g: ConvGeometry) -> Bool {
        g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1
            && g.c >= minimumChannels && g.cout >= minimumChannels && g.ho >= 2 && g.wo >= 2
            && (g.hw >= minimumPlane || cheaperThanColumns(g))
    }

    /// Whether Winograd's multiplies per weight — one per transformed weight for each tile of the
    /// batch, plus `weightCost` for transforming and streaming it — are fewer than im2col's nine
    /// per output pixel of the batch. The same cost model as `tiles(for:)`, which picks the tile
    /// (F(2×2) on these planes).
    static func cheaperThanColumns(_ g: ConvGeometry) -> Bool {
        let kind = tiles(for: g)
        let tiles = ((g.ho + kind.m - 1) / kind.m) * ((g.wo + kind.m - 1) / kind.m)
        let (perSample, o1) = kind.count.multipliedReportingOverflow(by: tiles)
        let (batch, o2) = perSample.multipliedReportingOverflow(by: g.n)
        let (winograd, o3) = batch.addingReportingOverflow(kind.count * weightCost)
        let (columns, o4) = (9 * g.hw).multipliedReportingOverflow(by: g.n)
        return !(o1 || o2 || o3 || o4) && winograd < columns
    }

    /// Bounds the transformed input and product buffers (floats per chunk of samples).
    static var budget = 4 << 20

    /// When false, the transforms stay on the Swift kernels even where CFinchKernels has its
    /// AVX-512 and AVX2 forms, so tests can run both.
    static var allowWide = true

    /// The output tile: F(2×2, 3×3) with 16 transformed matrices, or F(4×4, 3×3) with 36.
    enum Tiles {
        case two, four
        var m: Int { self == .two ? 2 : 4 }
        var count: Int { self == .two ? 16 : 36 }
    }

    /// When false, F(4×4, 3×3) is never chosen (tests, and A/B runs with FINCH_WINOGRAD=2).
    static var largeTiles = ProcessInfoLite.environment("FINCH_WINOGRAD") != "2"

    /// When true, F(4×4, 3×3) is chosen wherever its transforms exist, whatever it costs
    /// (FINCH_WINOGRAD=4): measuring its rounding against F(2×2)'s on the parity fixtures, whose
    /// small batches the cost model would otherwise keep on F(2×2).
    static var alwaysLargeTiles = ProcessInfoLite.environment("FINCH_WINOGRAD") == "4"

    /// What each transformed weight costs a call besides its multiplies (the transform, and
    /// streaming the weights through the GEMMs), in multiplies. With 64, ResNet18's convolutions
    /// at 128 px take F(4×4) at batch 32, where it measured 15% faster than F(2×2) in training and
    /// evaluation alike, and F(2×2) on 8×8 planes at batch 8 and on 16×16 and 8×8 at batch 1,
    /// where F(4×4) everywhere measured 2% and 15% slower in evaluation.
    static var weightCost = 64

    /// F(4×4, 3×3) where it costs less than F(2×2, 3×3): per weight, a multiply for each tile
    /// of the batch (tiles that overhang the plane included) plus `weightCost`, 36 transformed
    /// weights against 16. Only where the AVX-512 or AVX2 transforms exist (it has no Swift kernels),
    /// and not on planes below `minimumPlane`: on ResNet50's 7×7 layers at 224 px (batch 32) F(4×4)
    /// ran no faster than F(2×2) and its 36 transformed 512×512 matrices raised peak memory by 34 MiB.
    static func tiles(for g: ConvGeometry) -> Tiles {
        guard largeTiles, allowWide, KernelPath.active >= .avx2, offsetsFit(g), g.hw >= minimumPlane else { return .two }
        if alwaysLargeTiles { return .four }
        func cost(_ m: Int, _ count: Int) -> Int { count * (g.n * ((g.ho + m - 1) / m) * ((g.wo + m - 1) / m) + weightCost) }
        return cost(4, 36) < cost(2, 16) ? .four : .two
    }

    /// Rows and columns of output tiles, tiles per sample, and samples per chunk so that the
    /// input-side and output-side transformed buffers (`kind.count` values per tile and channel) fit `budget`.
    static func tiling(_ g: ConvGeometry, _ kind: Tiles) -> (th: Int, tw: Int, tiles: Int, samples: Int) {
        let th = (g.ho + kind.m - 1) / kind.m, tw = (g.wo + kind.m - 1) / kind.m, tiles = th * tw
        let perSample = kind.count * (g.c + g.cout) * tiles
        return (th, tw, tiles, Swift.max(1, Swift.min(g.n, budget / Swift.max(perSample, 1))))
    }

    /// U[ξ][co, ci] = (G·g·Gᵀ)[ξ] for weight [Cout, Cin, 3, 3], ξ = (m + 2)·row + column.
    static func transformWeights(_ w: UnsafePointer<Float>, cout: Int, cin: Int, into u: UnsafeMutablePointer<Float>,
                                 _ kind: Tiles = .two) {
        if kind == .four { return transformWeights4(w, cout: cout, cin: cin, into: u) }
        let plane = cout * cin
        Parallel.forEach(plane, grain: 256) { range in
            if allowWide, finch_winograd_weight_transform(w, plane, u, range.lowerBound, range.upperBound) == 1 {
                return
            }
            // Offsets are below 16·plane, the size of U, computed with checked arithmetic by the
            // caller's allocation: wrapping arithmetic cannot overflow.
            for p in range {
                let g = w + (p &* 9)
                // t = G·g (4×3), rows of G: (1,0,0), (½,½,½), (½,−½,½), (0,0,1); then U = t·Gᵀ.
                let g0 = SIMD4<Float>(g[0], g[1], g[2], 0), g1 = SIMD4<Float>(g[3], g[4], g[5], 0)
                let g2 = SIMD4<Float>(g[6], g[7], g[8], 0)
                let t0 = g0, t1 = 0.5 * (g0 + g1 + g2), t2 = 0.5 * (g0 - g1 + g2), t3 = g2
                @inline(__always) func emit(_ i: Int, _ r: SIMD4<Float>) {
                    let o = u + (4 &* i &* plane &+ p)
                    o[0] = r[0]
                    o[plane] = 0.5 * (r[0] + r[1] + r[2])
                    o[2 &* plane] = 0.5 * (r[0] - r[1] + r[2])
                    o[3 &* plane] = r[2]
                }
                emit(0, t0)
                emit(1, t1)
                emit(2, t2)
                emit(3, t3)
            }
        }
    }

    /// out = conv2d(x, weight) + bias with the geometry's padding (stride 1, 3×3).
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: ConvKernels.Epilogue = .none) {
        let kind = tiles(for: g)
        let u = UnsafeMutablePointer<Float>.allocate(capacity: kind.count * g.cout * g.c)
        defer { u.deallocate() }
        transformWeights(weight, cout: g.cout, cin: g.c, into: u, kind)
        forward(x: x, transformed: u, bias: bias, out: out, g, kind, epilogue: epilogue)
    }

    /// Floats of transformed input and product per block of samples in `forward`, so a block stays in
    /// cache between the input transform, the sixteen GEMMs and the output transform. 4 MB (this
    /// machine has 2 MB of L2 per core) measured a little better than 2 MB on ResNet18 (one
    /// thread: 77.6 against 70.5 img/s, medians of four) and on MobileViT-XXS.
    static var blockBudget = 1 << 20

    /// Blocks narrower than this many tiles take the chunked path: the GEMMs would be too thin.
    static var minimumBlockTiles = 64

    /// Samples per block of `forward`'s cache-resident path, or nil where it does not apply (fewer
    /// blocks than threads, too few tiles per block, or OpenBLAS threading itself).
    static func blockSamples(_ g: ConvGeometry, _ kind: Tiles? = nil) -> Int? {
        let kind = kind ?? tiles(for: g)
        let (_, _, tiles, _) = tiling(g, kind)
        let samples = Swift.max(1, Swift.min(g.n, blockBudget / Swift.max(kind.count * (g.c + g.cout) * tiles, 1)))
        let blocks = (g.n + samples - 1) / samples
        guard Parallel.gemmSplit, blocks >= Parallel.threads, samples * tiles >= minimumBlockTiles else { return nil }
        return samples
    }

    /// The same with the weights already transformed: u holds U as `kind.count` matrices [Cout, Cin].
    ///
    /// With enough samples, each thread takes whole blocks of samples and runs input transform,
    /// GEMMs and output transform on one block before the next, so the transformed tiles and the
    /// products are written and read back in L2 instead of going out to memory (the transforms are
    /// memory-bound: 6–8 GB/s on a 32 MB buffer). Otherwise the chunks of `transformedChunks` are
    /// transformed with all threads and multiplied with split GEMMs.
    static func forward(x: UnsafePointer<Float>, transformed u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ kind: Tiles,
                        epilogue: ConvKernels.Epilogue = .none) {
        if let samples = blockSamples(g, kind) {
            let blocks = (g.n + samples - 1) / samples
            Parallel.forEach(blocks) { range in
                withBlockBuffers(g, samples, kind) { v, m, c0 in
                    for block in range {
                        let c = c0.block(block, of: g)
                        inputTransform(x, g, c, parallel: false, into: v)
                        for xi in 0..<kind.count {
                            Gemm.sgemm(transA: false, transB: false, m: g.cout, n: c.p, k: g.c,
                                       a: u + xi * g.cout * g.c, lda: g.c, b: v + xi * c.vStride, ldb: c.p,
                                       c: m + xi * c.mStride, ldc: c.p, split: false)
                        }
                        outputTransform(m, g, c, bias: bias, epilogue: epilogue, parallel: false, into: out)
                    }
                }
            }
            return
        }
        transformedChunks(of: x, g, kind) { c, v, m in
            for xi in 0..<kind.count {
                Gemm.sgemm(transA: false, transB: false, m: g.cout, n: c.p, k: g.c,
                           a: u + xi * g.cout * g.c, lda: g.c, b: v + xi * c.vStride, ldb: c.p,
                           c: m + xi * c.mStride, ldc: c.p)
            }
            outputTransform(m, g, c, bias: bias, epilogue: epilogue, parallel: true, into: out)
        }
    }

    /// Parallel.forEach, or the whole range on this thread for a caller that already runs one block
    /// per thread.
    @inline(__always)
    static func planes(_ n: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
        if parallel {
            Parallel.forEach(n, grain: grain, body)
        } else if n > 0 {
            body(0..<n)
        }
    }

    /// One chunk of samples: first sample, sample count, tile rows and columns, P = samples · tiles,
    /// the distance between consecutive matrices ξ of the input side and of the output side, and the tile.
    struct Chunk {
        let n0: Int, nb: Int, th: Int, tw: Int, p: Int, vStride: Int, mStride: Int, kind: Tiles

        /// Block `index` of a blocked pass, whose blocks hold as many samples as this chunk.
        func block(_ index: Int, of g: ConvGeometry) -> Chunk {
            let first = index * nb, count = Swift.min(nb, g.n - first)
            return Chunk(n0: first, nb: count, th: th, tw: tw, p: count * th * tw, vStride: vStride, mStride: mStride,
                         kind: kind)
        }
    }

    /// One thread's buffers for blocks of `samples` samples: v [count, Cin, P] and m [count, Cout, P],
    /// with the layout in a chunk of the full block size (use `Chunk.block` for each block).
    static func withBlockBuffers(_ g: ConvGeometry, _ samples: Int, _ kind: Tiles,
                                 _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Chunk) -> Void) {
        let (th, tw, tiles, _) = tiling(g, kind)
        let vStride = matrixStride(rows: g.c, p: tiles * samples), mStride = matrixStride(rows: g.cout, p: tiles * samples)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: kind.count * vStride)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: kind.count * mStride)
        defer {
            v.deallocate()
            m.deallocate()
        }
        body(v, m, Chunk(n0: 0, nb: samples, th: th, tw: tw, p: samples * tiles, vStride: vStride, mStride: mStride,
                         kind: kind))
    }

    /// The input transform of chunk c, by its tile.
    static func inputTransform(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, parallel: Bool,
                               into v: UnsafeMutablePointer<Float>) {
        if c.kind == .four { return inputTransform4(x, g, c, parallel: parallel, into: v) }
        inputTransform(x, g, n0: c.n0, nb: c.nb, th: c.th, tw: c.tw, stride: c.vStride, parallel: parallel, into: v)
    }

    /// The output transform of chunk c, by its tile.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, bias: UnsafePointer<Float>?,
                                epilogue: ConvKernels.Epilogue, parallel: Bool, into out: UnsafeMutablePointer<Float>) {
        if c.kind == .four {
            return outputTransform4(m, g, c, bias: bias, epilogue: epilogue, parallel: parallel, into: out)
        }
        outputTransform(m, g, n0: c.n0, nb: c.nb, th: c.th, tw: c.tw, stride: c.mStride, bias: bias,
                        epilogue: epilogue, parallel: parallel, into: out)
    }

    /// The output-gradient transform of chunk c, by its tile.
    static func gradientTransform(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, parallel: Bool,
                                  into mt: UnsafeMutablePointer<Float>) {
        if c.kind == .four { return gradientTransform4(dy, g, c, parallel: parallel, into: mt) }
        gradientTransform(dy, g, n0: c.n0, nb: c.nb, th: c.th, tw: c.tw, stride: c.mStride, parallel: parallel,
                          into: mt)
    }

    /// Floats from matrix ξ to matrix ξ + 1 of a transformed buffer [16, rows, P]: rows·P rounded up
    /// to an odd number of 64-byte lines. The transforms read or write all sixteen matrices at once;
    /// at ResNet's power-of-two channel and tile counts rows·P is a multiple of 4 KiB, so packed
    /// matrices would put all sixteen streams in one L1 set (8 ways on Skylake, 12 on the machine
    /// this was measured on, where no difference could be measured either way).
    static func matrixStride(rows: Int, p: Int) -> Int {
        16 * (((rows * p + 15) / 16) | 1)
    }

    /// Calls body for each chunk of samples (sized by `tiling`) with x's transformed tiles in v
    /// [16, Cin, P] and a scratch buffer w for the output side [16, Cout, P], matrices `Chunk.vStride`
    /// and `Chunk.mStride` apart.
    static func transformedChunks(of x: UnsafePointer<Float>, _ g: ConvGeometry, _ kind: Tiles,
                                  _ body: (Chunk, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let nbMax = tiling(g, kind).samples
        withBlockBuffers(g, nbMax, kind) { v, w, full in
            for index in 0..<(g.n + nbMax - 1) / nbMax {
                let c = full.block(index, of: g)
                inputTransform(x, g, c, parallel: true, into: v)
                body(c, v, w)
            }
        }
    }

    /// V[ξ][ci, (s, tile)] = (Bᵀ·d·B)[ξ] for the 4×4 input block d of each tile, zero outside the input.
    ///
    /// The four input rows of a row of tiles are first copied into a zero-padded strip, so every
    /// tile, at the edges too, takes the vector path: four tiles per SIMD lane set, tile k's
    /// column j being element 2k + j of the strip row (even or odd lanes of eight floats).
    static func inputTransform(_ x: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int, th: Int, tw: Int,
                               stride: Int, parallel: Bool = true, into v: UnsafeMutablePointer<Float>) {
        let tiles = th * tw, p = nb * tiles
        let groups = (tw + 3) / 4, rowLength = 8 * groups + 2
        planes(nb * g.c, grain: Swift.max(1, 2048 / Swift.max(tiles, 1)), parallel: parallel) { range in
            let strip = UnsafeMutablePointer<Float>.allocate(capacity: 4 * rowLength)
            defer { strip.deallocate() }
            // Strip column q holds input column q − pl.
            let first = Swift.max(0, g.pl), copyStart = Swift.max(0, -g.pl)
            let copyCount = Swift.max(0, Swift.min(g.w - copyStart, rowLength - first))
            var wide = allowWide
            for unit in range {
                let s = unit / g.c, ci = unit % g.c
                let plane = x + ((n0 + s) * g.c + ci) * g.inPlane
                let dst = v + ci * p + s * tiles
                if wide {
                    wide = finch_winograd_input_transform(plane, g.h, g.w, g.pt, g.pl, th, tw, dst, stride) == 1
                    if wide { continue }
                }
                for ty in 0..<th {
                    let top = 2 * ty - g.pt
                    strip.update(repeating: 0, count: 4 * rowLength)
                    for i in 0..<4 where top + i >= 0 && top + i < g.h && copyCount > 0 {
                        (strip + i * rowLength + first).update(from: plane + (top + i) * g.w + copyStart, count: copyCount)
                    }
                    for group in 0..<groups {
                        let tx = 4 * group, r = strip + 2 * tx
                        @inline(__always) func columns(_ i: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
                            let a = UnsafeRawPointer(r + i * rowLength).loadUnaligned(as: SIMD8<Float>.self)
                            let b = UnsafeRawPointer(r + i * rowLength + 2).loadUnaligned(as: SIMD8<Float>.self)
                            return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                        }
                        let d0 = columns(0), d1 = columns(1), d2 = columns(2), d3 = columns(3)
                        let o = dst + ty * tw + tx
                        let lanes = Swift.min(4, tw - tx)
                        // Bᵀ·d on rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3), then the same on columns.
                        @inline(__always) func emit(_ i: Int, _ r: (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)) {
                            let base = o + (4 * i) * stride
                            storeTiles(base, r.0 - r.2, lanes: lanes)
                            storeTiles(base + stride, r.1 + r.2, lanes: lanes)
                            storeTiles(base + 2 * stride, r.2 - r.1, lanes: lanes)
                            storeTiles(base + 3 * stride, r.1 - r.3, lanes: lanes)
                        }
                        emit(0, (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3))
                        emit(1, (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3))
                        emit(2, (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3))
                        emit(3, (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3))
                    }
                }
            }
        }
    }

    /// Stores the first `lanes` (at most four) tiles of a vector of four: whole, or one by one where
    /// a tile row ends inside the group.
    @inline(__always)
    private static func storeTiles(_ at: UnsafeMutablePointer<Float>, _ value: SIMD4<Float>, lanes: Int) {
        if lanes == 4 {
            UnsafeMutableRawPointer(at).storeBytes(of: value, as: SIMD4<Float>.self)
        } else {
            for k in 0..<lanes { at[k] = value[k] }
        }
    }

    /// out[s, co, 2·ty + a, 2·tx + b] = (Aᵀ·M·A)[a, b] + bias, clipped at odd output edges.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int, th: Int, tw: Int,
                                stride: Int, bias: UnsafePointer<Float>?, epilogue: ConvKernels.Epilogue = .none,
                                parallel: Bool = true, into out: UnsafeMutablePointer<Float>) {
        let tiles = th * tw, p = nb * tiles
        planes(nb * g.cout, grain: Swift.max(1, 2048 / Swift.max(tiles, 1)), parallel: parallel) { range in
            var wide = allowWide
            for unit in range {
                let s = unit / g.cout, co = unit % g.cout
                let src = m + co * p + s * tiles
                let offset = ((n0 + s) * g.cout + co) * g.hw, plane = out + offset
                let b = bias?[co] ?? 0
                // The epilogue while the plane is still in cache (the C path leaves by `continue`).
                defer { if !epilogue.isNone { epilogue.apply(out, offset: offset, count: g.hw, channel: co) } }
                if wide {
                    wide = finch_winograd_output_transform(src, stride, th, tw, g.ho, g.wo, b, plane) == 1
                    if wide { continue }
                }
                for ty in 0..<th {
                    var tx = 0
                    let oy = 2 * ty
                    // Four whole tiles at a time (lane k = tile tx + k), rows written as eight floats.
                    while tx + 4 <= tw && 2 * tx + 8 <= g.wo && oy + 2 <= g.ho {
                        let t = src + ty * tw + tx
                        @inline(__always) func m(_ xi: Int) -> SIMD4<Float> {
                            UnsafeRawPointer(t + xi * stride).loadUnaligned(as: SIMD4<Float>.self)
                        }
                        @inline(__always) func row(_ i: Int) -> (SIMD4<Float>, SIMD4<Float>) {
                            let q0 = m(4 * i), q1 = m(4 * i + 1), q2 = m(4 * i + 2), q3 = m(4 * i + 3)
                            return (q0 + q1 + q2, q1 - q2 - q3)
                        }
                        let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
                        let bv = SIMD4<Float>(repeating: b)
                        let y00 = r0.0 + r1.0 + r2.0 + bv, y01 = r0.1 + r1.1 + r2.1 + bv
                        let y10 = r1.0 - r2.0 - r3.0 + bv, y11 = r1.1 - r2.1 - r3.1 + bv
                        let o = plane + oy * g.wo + 2 * tx
                        let top = SIMD8<Float>(y00[0], y01[0], y00[1], y01[1], y00[2], y01[2], y00[3], y01[3])
                        let bottom = SIMD8<Float>(y10[0], y11[0], y10[1], y11[1], y10[2], y11[2], y10[3], y11[3])
                        UnsafeMutableRawPointer(o).storeBytes(of: top, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(o + g.wo).storeBytes(of: bottom, as: SIMD8<Float>.self)
                        tx += 4
                    }
                    while tx < tw {
                        defer { tx += 1 }
                        let t = src + ty * tw + tx
                        // Aᵀ·M row by row: row0 = m0 + m1 + m2, row1 = m1 − m2 − m3 (over the 4 rows of M).
                        func mrow(_ i: Int) -> SIMD4<Float> {
                            SIMD4(t[(4 * i) * stride], t[(4 * i + 1) * stride], t[(4 * i + 2) * stride],
                                  t[(4 * i + 3) * stride])
                        }
                        let q0 = mrow(0), q1 = mrow(1), q2 = mrow(2), q3 = mrow(3)
                        let a = q0 + q1 + q2, c = q1 - q2 - q3
                        let y00 = a[0] + a[1] + a[2] + b, y01 = a[1] - a[2] - a[3] + b
                        let y10 = c[0] + c[1] + c[2] + b, y11 = c[1] - c[2] - c[3] + b
                        let ox = 2 * tx
                        let o = plane + oy * g.wo + ox
                        o[0] = y00
                        if ox + 1 < g.wo { o[1] = y01 }
                        if oy + 1 < g.ho {
                            o[g.wo] = y10
                            if ox + 1 < g.wo { o[g.wo + 1] = y11 }
                        }
                    }
                }
            }
        }
    }

    /// dx = the full correlation of dy with the weights flipped in space and transposed in channels:
    /// a 3×3 stride-1 convolution of dy with padding (2 − top, 2 − left), itself done by Winograd.
    static func inputGradient(dy: UnsafePointer<Float>, weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                              _ g: ConvGeometry) {
        let flipped = UnsafeMutablePointer<Float>.allocate(capacity: g.cout * g.c * 9)
        defer { flipped.deallocate() }
        for co in 0..<g.cout {
            for ci in 0..<g.c {
                let src = weight + (co * g.c + ci) * 9, dst = flipped + (ci * g.cout + co) * 9
                for k in 0..<9 { dst[k] = src[8 - k] }
            }
        }
        let pb = g.h + 2 - g.ho - (2 - g.pt)
        let pr = g.w + 2 - g.wo - (2 - g.pl)
        let back = ConvGeometry(input: [g.n, g.cout, g.ho, g.wo], weight: [g.c, g.cout, 3, 3], stride: (1, 1),
                                padding: Padding2d(top: 2 - g.pt, bottom: pb, left: 2 - g.pl, right: pr),
                                dilation: (1, 1), groups: 1, op: "conv2d backward")
        ensure(back.ho == g.h && back.wo == g.w, "WinogradConv: backward geometry mismatch")
        forward(x: dy, weight: flipped, bias: nil, out: dx, back)
    }

    /// dW by Winograd too: y = Aᵀ·[Σ_ci U ⊙ V]·A makes ∂L/∂U[ξ][co, ci] = Σ_tiles M̃[ξ][co, t]·V[ξ][ci, t]
    /// with M̃ = A·dY·Aᵀ the 2×2 output gradient of each tile spread onto the 4×4 grid, and
    /// dW = Gᵀ·dU·G. Sixteen GEMMs [Cout, P]·[P, Cin] replace im2col's [Cout, P·4]·[P·4, Cin·9]:
    /// 2.25× fewer multiplies and no nine-fold copy of the input.
    static func weightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                               _ g: ConvGeometry) {
        let kind = tiles(for: g)
        let size = kind.count * g.cout * g.c
        let du = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { du.deallocate() }
        if let samples = blockSamples(g, kind), size <= maximumPartialGradient {
            blockedWeightGradient(dy: dy, x: x, samples: samples, into: du, g, kind)
            return weightGradientFromTransformed(du, cout: g.cout, cin: g.c, into: dw, kind)
        }
        transformedChunks(of: x, g, kind) { c, v, mt in
            gradientTransform(dy, g, c, parallel: true, into: mt)
            for xi in 0..<kind.count {
                Gemm.sgemm(transA: false, transB: true, m: g.cout, n: g.c, k: c.p,
                           a: mt + xi * c.mStride, lda: c.p, b: v + xi * c.vStride, ldb: c.p,
                           beta: c.n0 == 0 ? 0 : 1, c: du + xi * g.cout * g.c, ldc: g.c)
            }
        }
        weightGradientFromTransformed(du, cout: g.cout, cin: g.c, into: dw, kind)
    }

    /// Largest dU (floats) for which each thread may keep its own partial sum.
    static var maximumPartialGradient = 1 << 20

    /// dU with the blocks of samples split into one run per thread: each thread transforms its
    /// blocks of x and dY and accumulates its own dU while they are in cache; the partial sums are
    /// then added in a fixed order (so the result depends on the thread count, not on timing).
    static func blockedWeightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, samples: Int,
                                      into du: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ kind: Tiles) {
        let size = kind.count * g.cout * g.c, blocks = (g.n + samples - 1) / samples
        let parts = Swift.min(Parallel.threads, blocks)
        Parallel.partialSums(parts, size: size, into: du) { range, target in
            withBlockBuffers(g, samples, kind) { v, mt, c0 in
                for part in range {
                    let acc = target(part)
                    for block in blocks * part / parts..<blocks * (part + 1) / parts {
                        let c = c0.block(block, of: g)
                        inputTransform(x, g, c, parallel: false, into: v)
                        gradientTransform(dy, g, c, parallel: false, into: mt)
                        for xi in 0..<kind.count {
                            Gemm.sgemm(transA: false, transB: true, m: g.cout, n: g.c, k: c.p,
                                       a: mt + xi * c.mStride, lda: c.p, b: v + xi * c.vStride, ldb: c.p,
                                       beta: block == blocks * part / parts ? 0 : 1, c: acc + xi * g.cout * g.c,
                                       ldc: g.c, split: false)
                        }
                    }
                }
            }
        }
    }

    /// M̃[ξ][co, (s, tile)] = (A·dY·Aᵀ)[ξ] for the 2×2 output-gradient block of each tile (zero past
    /// odd edges), A = Aᵀᵀ with rows (1, 0), (1, 1), (1, −1), (0, −1).
    static func gradientTransform(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int, th: Int, tw: Int,
                                  stride: Int, parallel: Bool = true, into mt: UnsafeMutablePointer<Float>) {
        let tiles = th * tw, p = nb * tiles
        let groups = (tw + 3) / 4, rowLength = 8 * groups
        planes(nb * g.cout, grain: Swift.max(1, 2048 / Swift.max(tiles, 1)), parallel: parallel) { range in
            // The tile row's two output rows, zero-padded to whole groups of four tiles.
            let strip = UnsafeMutablePointer<Float>.allocate(capacity: 2 * rowLength)
            defer { strip.deallocate() }
            strip.initialize(repeating: 0, count: 2 * rowLength)
            var wide = allowWide
            for unit in range {
                let s = unit / g.cout, co = unit % g.cout
                let plane = dy + ((n0 + s) * g.cout + co) * g.hw
                let dst = mt + co * p + s * tiles
                if wide {
                    wide = finch_winograd_gradient_transform(plane, g.ho, g.wo, th, tw, dst, stride) == 1
                    if wide { continue }
                }
                for ty in 0..<th {
                    for a in 0..<2 {
                        let row = 2 * ty + a
                        if row < g.ho {
                            (strip + a * rowLength).update(from: plane + row * g.wo, count: g.wo)
                        } else {
                            (strip + a * rowLength).update(repeating: 0, count: g.wo)
                        }
                    }
                    for group in 0..<groups {
                        let tx = 4 * group
                        let r0 = UnsafeRawPointer(strip + 2 * tx).loadUnaligned(as: SIMD8<Float>.self)
                        let r1 = UnsafeRawPointer(strip + rowLength + 2 * tx).loadUnaligned(as: SIMD8<Float>.self)
                        // Rows first (dY₀, dY₀ + dY₁, dY₀ − dY₁, −dY₁), then the same on columns.
                        let e0 = r0.evenHalf, o0 = r0.oddHalf, e1 = r1.evenHalf, o1 = r1.oddHalf
                        let o = dst + ty * tw + tx
                        let lanes = Swift.min(4, tw - tx)
                        @inline(__always) func emit(_ i: Int, _ c0: SIMD4<Float>, _ c1: SIMD4<Float>) {
                            let base = o + (4 * i) * stride
                            storeTiles(base, c0, lanes: lanes)
                            storeTiles(base + stride, c0 + c1, lanes: lanes)
                            storeTiles(base + 2 * stride, c0 - c1, lanes: lanes)
                            storeTiles(base + 3 * stride, -c1, lanes: lanes)
                        }
                        emit(0, e0, o0)
                        emit(1, e0 + e1, o0 + o1)
                        emit(2, e0 - e1, o0 - o1)
                        emit(3, -e1, -o1)
                    }
                }
            }
        }
    }

    /// dW[co, ci] = Gᵀ·dU[co, ci]·G (3×3 from 4×4), the adjoint of `transformWeights`.
    static func weightGradientFromTransformed(_ du: UnsafePointer<Float>, cout: Int, cin: Int,
                                              into dw: UnsafeMutablePointer<Float>, _ kind: Tiles) {
        if kind == .four { return weightGradientFromTransformed4(du, cout: cout, cin: cin, into: dw) }
        let plane = cout * cin
        Parallel.forEach(plane, grain: 256) { range in
            // Offsets are below 16·plane and 9·plane, the sizes of dU and dW (checked when they
            // were allocated): wrapping arithmetic cannot overflow.
            for q in range {
                @inline(__always) func row(_ i: Int) -> SIMD4<Float> {
                    let r = du + (4 &* i &* plane &+ q)
                    return SIMD4(r[0], r[plane], r[2 &* plane], r[3 &* plane])
                }
                let d0 = row(0), d1 = row(1), d2 = row(2), d3 = row(3)
                // Gᵀ on rows, G's columns (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1); then on columns.
                let out = dw + (q &* 9)
                @inline(__always) func emit(_ i: Int, _ r: SIMD4<Float>) {
                    let o = out + (3 &* i)
                    o[0] = r[0] + 0.5 * (r[1] + r[2])
                    o[1] = 0.5 * (r[1] - r[2])
                    o[2] = 0.5 * (r[1] + r[2]) + r[3]
                }
                emit(0, d0 + 0.5 * (d1 + d2))
                emit(1, 0.5 * (d1 - d2))
                emit(2, 0.5 * (d1 + d2) + d3)
            }
        }
    }

    /// The input gradient's geometry needs padding 2 − p ≥ 0 on every side.
    static func appliesToInputGradient(_ g: ConvGeometry) -> Bool {
        let pb = g.h + 2 - g.ho - (2 - g.pt), pr = g.w + 2 - g.wo - (2 - g.pl)
        return g.pt <= 2 && g.pl <= 2 && pb >= 0 && pr >= 0 && g.h >= 2 && g.w >= 2
    }
}
