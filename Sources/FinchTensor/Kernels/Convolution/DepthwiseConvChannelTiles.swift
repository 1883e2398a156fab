import CFinchKernels

// Depthwise convolution on small planes, vectorised over channels.
//
// On the late stages of a mobile network the planes are 8×8 or 4×4 while the kernels are 5×5:
// a row of output is four to eight floats, too short for the row-vectorised kernel in
// DepthwiseConv.swift, which then spends its time on loop overhead and packing (40% of a
// MobileNetV3-Small forward). Here eight channels share one SIMD vector instead: a block of
// eight planes is transposed into a zero-padded tile [Hp, Wp, 8], and every tap of every output
// is one vector multiply-add, whatever the plane's width. The transposes touch each value
// once; the tap loops, which touch it kh·kw times, run on whole vectors.

enum DepthwiseConvChannelTiles {
    typealias Lanes = SIMD8<Float>
    static let width = 8

    /// Output planes up to this width take this path (measured on MobileNetV3-Small and
    /// EfficientNet-Lite0 at 128 px; see Benchmarks/README.md).
    static var maxOutputWidth = 16

    static func applies(to g: ConvGeometry) -> Bool { g.wo <= maxOutputWidth }

    /// Rows and columns of the padded tile: every position some tap reads, padding included.
    ///
    /// Its sizes are computed with checked arithmetic, once: every index the kernels below form,
    /// tile (oh·sh + i·dh)·Wp + ow·sw + j·dw, is at most Hp·Wp − 1, and every NCHW offset at most
    /// a tensor's element count, so the loops use wrapping `&*` and `&+`, which cannot overflow there
    /// (overflow checks in the tap loops cost 40–50% of the kernels' instructions).
    struct Tile {
        let hp: Int, wp: Int, count: Int

        init(_ g: ConvGeometry) {
            hp = (g.ho - 1) * g.sh + (g.kh - 1) * g.dh + 1
            wp = (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1
            count = hp * wp
        }
    }

    /// tile[(ih + pt)·Wp + iw + pl][c] = x[sample, c0 + c, ih, iw]; padding and missing channels are 0.
    @inline(__always)
    static func load(_ x: UnsafePointer<Float>, sample s: Int, c0: Int, lanes: Int, _ g: ConvGeometry, _ t: Tile,
                     into tile: UnsafeMutablePointer<Lanes>) {
        tile.update(repeating: Lanes(repeating: 0), count: t.count)
        let flat = UnsafeMutableRawPointer(tile).assumingMemoryBound(to: Float.self)
        let rows = Swift.max(0, Swift.min(g.h, t.hp - g.pt)), cols = Swift.max(0, Swift.min(g.w, t.wp - g.pl))
        for c in 0..<lanes {
            let plane = x + ((s &* g.c &+ c0 &+ c) &* g.inPlane)
            for ih in 0..<rows {
                let src = plane + (ih &* g.w)
                let dst = flat + (((ih &+ g.pt) &* t.wp &+ g.pl) &* width &+ c)
                for iw in 0..<cols { dst[iw &* width] = src[iw] }
            }
        }
    }

    /// weights[tap][c] = w[c0 + c, tap], 0 for missing channels.
    @inline(__always)
    static func loadWeights(_ w: UnsafePointer<Float>, c0: Int, lanes: Int, _ g: ConvGeometry,
                            into wt: UnsafeMutablePointer<Lanes>) {
        // Through a Float view: inserting into a SIMD value lane by lane stalls on store forwarding.
        if lanes < width { wt.update(repeating: Lanes(repeating: 0), count: g.khw) }
        let flat = UnsafeMutableRawPointer(wt).assumingMemoryBound(to: Float.self)
        for c in 0..<lanes {
            let src = w + ((c0 &+ c) &* g.khw)
            for tap in 0..<g.khw { flat[tap &* width &+ c] = src[tap] }
        }
    }

    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: ConvKernels.Epilogue = .none) {
        if forwardWide(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue) { return }
        let t = Tile(g)
        let rowStep = g.sh * t.wp, tapRowStep = g.dh * t.wp
        let blocks = (g.c + width - 1) / width
        Parallel.forEach(g.n * blocks, grain: Swift.max(1, 2048 / Swift.max(g.hw * g.khw, 1))) { range in
            let tile = UnsafeMutablePointer<Lanes>.allocate(capacity: t.count)
            let wt = UnsafeMutablePointer<Lanes>.allocate(capacity: g.khw)
            let row = UnsafeMutablePointer<Lanes>.allocate(capacity: g.wo)
            defer {
                tile.deallocate()
                wt.deallocate()
                row.deallocate()
            }
            let rowFlat = UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self)
            var loaded = -1
            var b = Lanes(repeating: 0)
            // Block-major order, so consecutive units share their weights.
            for u in range {
                let block = u / g.n, s = u % g.n, c0 = block * width
                let lanes = Swift.min(width, g.c - c0)
                load(x, sample: s, c0: c0, lanes: lanes, g, t, into: tile)
                if block != loaded {
                    loadWeights(weight, c0: c0, lanes: lanes, g, into: wt)
                    b = Lanes(repeating: 0)
                    if let bias { for c in 0..<lanes { b[c] = bias[c0 + c] } }
                    loaded = block
                }
                for oh in 0..<g.ho {
                    let tileRow = tile + (oh &* rowStep)
                    for ow in 0..<g.wo {
                        var acc = b
                        let corner = tileRow + (ow &* g.sw)
                        for i in 0..<g.kh {
                            let r = corner + (i &* tapRowStep)
                            let wr = wt + (i &* g.kw)
                            for j in 0..<g.kw { acc += wr[j] * r[j &* g.dw] }
                        }
                        row[ow] = acc
                    }
                    for c in 0..<lanes {
                        let dst = out + ((s &* g.c &+ c0 &+ c) &* g.hw &+ oh &* g.wo)
                        for ow in 0..<g.wo { dst[ow] = rowFlat[ow &* width &+ c] }
                    }
                }
                finish(out, unit: u, width: width, g, epilogue)
            }
        }
    }

    /// The epilogue over the planes that unit u (sample u % N, channel block u / N) has just written.
    @inline(__always)
    private static func finish(_ out: UnsafeMutablePointer<Float>, unit u: Int, width: Int, _ g: ConvGeometry,
                               _ epilogue: ConvKernels.Epilogue) {
        guard !epilogue.isNone else { return }
        let c0 = (u / g.n) * width, s = u % g.n
        for c in c0..<Swift.min(c0 + width, g.c) {
            epilogue.apply(out, offset: (s * g.c + c) * g.hw, count: g.hw, channel: c)
        }
    }

    /// The same kernel in CFinchKernels with sixteen channels per AVX-512 vector and FMA, or on AVX2
    /// eight per vector with this code's arithmetic and bits (a portable Swift build runs the SIMD8
    /// code above as pairs of SSE2 operations). False on the generic path.
    static var allowWide = true

    static func forwardWide(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            out: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                            epilogue: ConvKernels.Epilogue = .none) -> Bool {
        guard allowWide, KernelPath.active >= .avx2 else { return false }
        let geometry = [g.n, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.ho, g.wo]
        let scratch = geometry.withUnsafeBufferPointer { finch_depthwise_tiles16_scratch($0.baseAddress!) }
        let blocks = (g.c + 15) / 16
        geometry.withUnsafeBufferPointer { geo in
            Parallel.forEach(g.n * blocks, grain: Swift.max(1, 2048 / Swift.max(g.hw * g.khw, 1))) { range in
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(scratch, 16) * 4, alignment: 64)
                defer { buffer.deallocate() }
                _ = finch_depthwise_tiles16(x, weight, bias, out, geo.baseAddress!, range.lowerBound, range.upperBound,
                                            buffer.assumingMemoryBound(to: Float.self))
                for u in range { finish(out, unit: u, width: 16, g, epilogue) }
            }
        }
        return true
    }

    /// Each thread owns whole channel blocks, so the weight gradient needs no reduction across
    /// threads and is the same for any thread count.
    ///
    /// One weight's gradient sums N·Ho·Wo products (2048 for a 16×16 map at batch 8). Added in one
    /// Float chain, as before, its rounding error grows with that length (44ε of Σ|dy·x| against
    /// 1.0ε now in DepthwiseAccumulationAccuracyTests). The sum is blocked instead: Float partials
    /// over chunks of `rowsPerChunk` whole rows (at most sixteen outputs, or one row where a row holds
    /// more), chunks added into a Float partial per plane, planes added in Double (Benchmarks/AccumulationAccuracy.md).
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        let t = Tile(g)
        let rowStep = g.sh * t.wp, tapRowStep = g.dh * t.wp
        let blocks = (g.c + width - 1) / width
        Parallel.forEach(blocks, grain: 1) { range in
            let tile = UnsafeMutablePointer<Lanes>.allocate(capacity: t.count)
            let dtile = UnsafeMutablePointer<Lanes>.allocate(capacity: t.count)
            let wt = UnsafeMutablePointer<Lanes>.allocate(capacity: g.khw)
            let acc = UnsafeMutablePointer<Lanes>.allocate(capacity: g.khw)
            let planeAcc = UnsafeMutablePointer<Lanes>.allocate(capacity: g.khw)
            let total = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: g.khw)
            let dyt = UnsafeMutablePointer<Lanes>.allocate(capacity: g.hw)
            defer {
                tile.deallocate()
                dtile.deallocate()
                wt.deallocate()
                acc.deallocate()
                planeAcc.deallocate()
                total.deallocate()
                dyt.deallocate()
            }
            let rowsPerChunk = Swift.max(1, 16 / Swift.max(g.wo, 1))
            let dyFlat = UnsafeMutableRawPointer(dyt).assumingMemoryBound(to: Float.self)
            let dFlat = UnsafeMutableRawPointer(dtile).assumingMemoryBound(to: Float.self)
            for block in range {
                let c0 = block * width, lanes = Swift.min(width, g.c - c0)
                loadWeights(weight, c0: c0, lanes: lanes, g, into: wt)
                total.update(repeating: SIMD8<Double>(repeating: 0), count: g.khw)
                for s in 0..<g.n {
                    // dy of this block as [Ho·Wo][8].
                    if lanes < width { dyt.update(repeating: Lanes(repeating: 0), count: g.hw) }
                    for c in 0..<lanes {
                        let src = dy + ((s &* g.c &+ c0 &+ c) &* g.hw)
                        for p in 0..<g.hw { dyFlat[p &* width &+ c] = src[p] }
                    }
                    if dw != nil {
                        load(x, sample: s, c0: c0, lanes: lanes, g, t, into: tile)
                        planeAcc.update(repeating: Lanes(repeating: 0), count: g.khw)
                        var oh0 = 0
                        while oh0 < g.ho {
                            acc.update(repeating: Lanes(repeating: 0), count: g.khw)
                            for oh in oh0..<Swift.min(g.ho, oh0 &+ rowsPerChunk) {
                                let tileRow = tile + (oh &* rowStep), dyRow = dyt + (oh &* g.wo)
                                for ow in 0..<g.wo {
                                    let d = dyRow[ow]
                                    let corner = tileRow + (ow &* g.sw)
                                    for i in 0..<g.kh {
                                        let r = corner + (i &* tapRowStep)
                                        let a = acc + (i &* g.kw)
                                        for j in 0..<g.kw { a[j] += d * r[j &* g.dw] }
                                    }
                                }
                            }
                            for tap in 0..<g.khw { planeAcc[tap] += acc[tap] }
                            oh0 &+= rowsPerChunk
                        }
                        for tap in 0..<g.khw { total[tap] += SIMD8<Double>(planeAcc[tap]) }
                    }
                    guard let dx else { continue }
                    dtile.update(repeating: Lanes(repeating: 0), count: t.count)
                    for oh in 0..<g.ho {
                        let tileRow = dtile + (oh &* rowStep), dyRow = dyt + (oh &* g.wo)
                        for ow in 0..<g.wo {
                            let d = dyRow[ow]
                            let corner = tileRow + (ow &* g.sw)
                            for i in 0..<g.kh {
                                let r = corner + (i &* tapRowStep)
                                let wr = wt + (i &* g.kw)
                                for j in 0..<g.kw { r[j &* g.dw] += wr[j] * d }
                            }
                        }
                    }
                    // Back to NCHW, dropping the padding; input pixels no tap reads get 0.
                    for c in 0..<lanes {
                        let plane = dx + ((s &* g.c &+ c0 &+ c) &* g.inPlane)
                        for ih in 0..<g.h {
                            let dst = plane + (ih &* g.w)
                            let tr = ih &+ g.pt
                            for iw in 0..<g.w {
                                let tc = iw &+ g.pl
                                dst[iw] = (tr < t.hp && tc < t.wp) ? dFlat[(tr &* t.wp &+ tc) &* width &+ c] : 0
                            }
                        }
                    }
                }
                if let dw {
                    for c in 0..<lanes {
                        for tap in 0..<g.khw { dw[(c0 &+ c) &* g.khw &+ tap] = Float(total[tap][c]) }
                    }
                }
            }
        }
    }
}
