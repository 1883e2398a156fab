import CFinchKernels

// Direct depthwise convolution (groups == Cin == Cout): each output plane depends on one
// input plane and kh·kw weights, far too little arithmetic for a GEMM to pay off.
//
// Each input plane is first copied into a "phase-packed" buffer: every row is zero padded
// horizontally and split into `sw` phases (phase p holds padded columns p, p + sw, p + 2·sw, …).
// Tap j of output column ow then reads padded column ow·sw + j·dw, which is element
// ow + ⌊j·dw / sw⌋ of phase (j·dw) mod sw: a contiguous run for every stride. The inner loops
// are therefore plain `o[ow] += w · s[ow]` over unit-stride pointers with no bounds tests,
// which the compiler vectorises. Rows outside the input (vertical padding) are skipped.

enum DepthwiseConv {
    /// Sizes of one phase-packed plane.
    struct Packing {
        /// Padded row length actually read: (wo − 1)·sw + (kw − 1)·dw + 1.
        let wpad: Int
        /// Length of one phase.
        let lq: Int
        /// Floats per packed row (sw phases).
        let row: Int
        /// Floats per packed plane.
        let plane: Int

        init(_ g: ConvGeometry) {
            wpad = (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1
            lq = (wpad + g.sw - 1) / g.sw
            row = g.sw * lq
            plane = g.h * row
        }

        /// Offset inside a packed row of the run read by tap j.
        @inline(__always)
        func tapOffset(_ j: Int, _ g: ConvGeometry) -> Int {
            let t = j * g.dw
            return (t % g.sw) * lq + t / g.sw
        }

        /// Phase `ph` elements q in this range hold real input columns q·sw + ph − pl; the rest are padding.
        @inline(__always)
        func realRange(phase ph: Int, _ g: ConvGeometry) -> Range<Int> {
            let lo = Swift.min(lq, Swift.max(0, ceilDiv(g.pl - ph, g.sw)))
            let hi = Swift.max(lo, Swift.min(lq, ceilDiv(g.w + g.pl - ph, g.sw), ceilDiv(wpad - ph, g.sw)))
            return lo..<hi
        }
    }

    static func pack(_ src: UnsafePointer<Float>, _ g: ConvGeometry, _ p: Packing, into dst: UnsafeMutablePointer<Float>) {
        // Per-phase offsets are computed (checked) once; per row, offsets stay inside the input
        // plane and the packed plane, so the row loop uses wrapping arithmetic.
        for ph in 0..<g.sw {
            let real = p.realRange(phase: ph, g)
            let lead = real.lowerBound * g.sw + ph - g.pl, phase = ph * p.lq, tail = p.lq - real.upperBound
            for r in 0..<g.h {
                let s = src + (r &* g.w)
                let dp = dst + (r &* p.row &+ phase)
                dp.update(repeating: 0, count: real.lowerBound)
                let first = s + lead
                if g.sw == 1 {
                    (dp + real.lowerBound).update(from: first, count: real.count)
                } else if g.sw == 2 {
                    // De-interleave with vector shuffles: the even lanes of eight loaded floats are
                    // four consecutive elements of this phase. Loads stay inside the input row.
                    let avail = g.w - (real.lowerBound * 2 + ph - g.pl)
                    let out = dp + real.lowerBound
                    var q = 0
                    while q &+ 4 <= real.count && 2 &* q &+ 8 <= avail {
                        let v = UnsafeRawPointer(first + (2 &* q)).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(out + q).storeBytes(of: v.evenHalf, as: SIMD4<Float>.self)
                        q &+= 4
                    }
                    while q < real.count {
                        out[q] = first[2 &* q]  // inside the input row (see above): no overflow
                        q &+= 1
                    }
                } else {
                    for q in 0..<real.count { dp[real.lowerBound &+ q] = first[q &* g.sw] }  // inside the row
                }
                (dp + real.upperBound).update(repeating: 0, count: tail)
            }
        }
    }

    /// dx plane = the packed gradient with padding dropped; columns no tap reads get 0.
    static func unpack(_ src: UnsafePointer<Float>, _ g: ConvGeometry, _ p: Packing, into dst: UnsafeMutablePointer<Float>) {
        let unread = Swift.max(0, p.wpad - g.pl)
        if unread < g.w {
            for r in 0..<g.h { (dst + r * g.w + unread).update(repeating: 0, count: g.w - unread) }
        }
        for ph in 0..<g.sw {
            let real = p.realRange(phase: ph, g)
            // As in pack: per-phase offsets checked once, row offsets inside both planes.
            let lead = real.lowerBound * g.sw + ph - g.pl, phase = ph * p.lq + real.lowerBound
            for r in 0..<g.h {
                let s = src + (r &* p.row), d = dst + (r &* g.w)
                let first = d + lead, sp = s + phase
                if g.sw == 1 {
                    first.update(from: sp, count: real.count)
                } else {
                    for q in 0..<real.count { first[q &* g.sw] = sp[q] }  // inside the row: no overflow
                }
            }
        }
    }

    /// The geometry CFinchKernels' plane kernels read: {kh, kw, sh, dh, dw, pt, h, ho, wo, packed row,
    /// padded row, edge, gather}.
    static func cKernelGeometry(_ g: ConvGeometry, _ p: Packing) -> [Int] {
        [g.kh, g.kw, g.sh, g.dh, g.dw, g.pt, g.h, g.ho, g.wo, p.row, p.wpad, (g.kw - 1) * g.dw, g.sw == 1 ? 1 : 0,
         g.w, g.pl]
    }

    /// When false, stride-1 forward planes are packed like the others even where the C kernel can
    /// read them in place, so tests can compare the two.
    static var allowDirect = true

    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: ConvKernels.Epilogue = .none) {
        if DepthwiseConvChannelTiles.applies(to: g) {
            return DepthwiseConvChannelTiles.forward(x: x, weight: weight, bias: bias, out: out, g,
                                                     epilogue: epilogue)
        }
        let p = Packing(g)
        let taps = (0..<g.kw).map { p.tapOffset($0, g) }
        let kernelGeometry = cKernelGeometry(g, p)
        Parallel.forEach(g.n * g.c, grain: Swift.max(1, 4096 / Swift.max(g.hw * g.khw, 1))) { range in
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(p.plane, 1))
            defer { packed.deallocate() }
            taps.withUnsafeBufferPointer { tap in
                for u in range {
                    let c = u % g.c
                    let wc = weight + c * g.khw
                    let b = bias?[c] ?? 0
                    if !(allowDirect && finch_depthwise_forward_direct(x + u * g.inPlane, wc, b, out + u * g.hw,
                                                                       kernelGeometry) == 1) {
                        pack(x + u * g.inPlane, g, p, into: packed)
                        if finch_depthwise_forward_plane(packed, wc, b, out + u * g.hw, kernelGeometry, tap.baseAddress!) == 0 {
                            forwardPlane(packed: packed, weight: wc, bias: b, out: out + u * g.hw, taps: tap, p, g)
                        }
                    }
                    if !epilogue.isNone { epilogue.apply(out, offset: u * g.hw, count: g.hw, channel: c) }
                }
            }
        }
    }

    /// Split over channels: each thread owns whole weight-gradient rows and whole dx planes, so the
    /// result is the same for any thread count. The weight gradient accumulates per tap into a row of
    /// Wo lanes (vectorisable); each sample's lanes are summed and added in Double, so no Float chain
    /// runs across samples (lanes over all N·Ho rows, as before: 5.2ε of Σ|dy·x| against 0.68ε in
    /// DepthwiseAccumulationAccuracyTests; Benchmarks/AccumulationAccuracy.md).
    ///
    /// With sw == 1 the input gradient is gathered rather than scattered: packed dx position x
    /// receives Σ_j w[i, j]·dy[x − j·dw], read from a zero-padded copy of the dy row, so the taps
    /// of one kernel row fuse into one pass. Strided convolutions scatter tap by tap into the phases.
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        if DepthwiseConvChannelTiles.applies(to: g) {
            return DepthwiseConvChannelTiles.backward(dy: dy, x: x, weight: weight, dx: dx, dw: dw, g)
        }
        let p = Packing(g)
        let taps = (0..<g.kw).map { p.tapOffset($0, g) }
        let edge = (g.kw - 1) * g.dw
        let kernelGeometry = cKernelGeometry(g, p)
        Parallel.forEach(g.c, grain: Swift.max(1, 4096 / Swift.max(g.n * g.hw * g.khw, 1))) { range in
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(p.plane, 1))
            let dpacked = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(p.plane, 1))
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: g.khw * g.wo)
            let total = UnsafeMutablePointer<Double>.allocate(capacity: g.khw)
            let dyPad = UnsafeMutablePointer<Float>.allocate(capacity: g.wo + 2 * edge)
            dyPad.initialize(repeating: 0, count: g.wo + 2 * edge)
            defer {
                packed.deallocate()
                dpacked.deallocate()
                acc.deallocate()
                total.deallocate()
                dyPad.deallocate()
            }
            taps.withUnsafeBufferPointer { tap in
                for c in range {
                    let wc = weight + c * g.khw
                    if dw != nil { total.initialize(repeating: 0, count: g.khw) }
                    for s in 0..<g.n {
                        let u = s * g.c + c
                        if dw != nil {
                            pack(x + u * g.inPlane, g, p, into: packed)
                            acc.initialize(repeating: 0, count: g.khw * g.wo)
                        }
                        if dx != nil { dpacked.initialize(repeating: 0, count: p.plane) }
                        if finch_depthwise_backward_plane(dy + u * g.hw, packed, wc, dw != nil ? acc : nil, dx != nil ? dpacked : nil,
                                                          dyPad, kernelGeometry, tap.baseAddress!) == 0 {
                            backwardPlane(dy: dy + u * g.hw, packed: packed, weight: wc, acc: dw != nil ? acc : nil,
                                          dpacked: dx != nil ? dpacked : nil, dyPad: dyPad, taps: tap, p, g)
                        }
                        if let dx { unpack(dpacked, g, p, into: dx + u * g.inPlane) }
                        if dw != nil {
                            for t in 0..<g.khw { total[t] += Double(ReduceKernels.sumContiguous(acc + t * g.wo, g.wo)) }
                        }
                    }
                    if let dw {
                        for t in 0..<g.khw { dw[c * g.khw + t] = Float(total[t]) }
                    }
                }
            }
        }
    }

    /// One (channel, sample) plane of the forward from its packed rows, in Swift: the path for CPUs
    /// without AVX-512 (finch_depthwise_forward_plane does the same operations in the same order).
    private static func forwardPlane(packed: UnsafePointer<Float>, weight wc: UnsafePointer<Float>, bias b: Float,
                                     out: UnsafeMutablePointer<Float>, taps tap: UnsafeBufferPointer<Int>, _ p: Packing,
                                     _ g: ConvGeometry) {
        for oh in 0..<g.ho {
            let o = out + oh * g.wo
            let ih0 = oh * g.sh - g.pt
            if g.kh == 3 && g.kw == 3 && ih0 >= 0 && ih0 + 2 * g.dh < g.h {
                // Interior rows of a 3×3 kernel: all nine taps in one pass, one store per output.
                let r0 = packed + ih0 * p.row, r1 = r0 + g.dh * p.row, r2 = r1 + g.dh * p.row
                let (t0, t1, t2) = (tap[0], tap[1], tap[2])
                let a0 = r0 + t0, a1 = r0 + t1, a2 = r0 + t2
                let b0 = r1 + t0, b1 = r1 + t1, b2 = r1 + t2
                let c0 = r2 + t0, c1 = r2 + t1, c2 = r2 + t2
                let (w0, w1, w2) = (wc[0], wc[1], wc[2])
                let (w3, w4, w5) = (wc[3], wc[4], wc[5])
                let (w6, w7, w8) = (wc[6], wc[7], wc[8])
                for ow in 0..<g.wo {
                    let top = w0 * a0[ow] + w1 * a1[ow] + w2 * a2[ow]
                    let mid = w3 * b0[ow] + w4 * b1[ow] + w5 * b2[ow]
                    let bot = w6 * c0[ow] + w7 * c1[ow] + w8 * c2[ow]
                    o[ow] = b + top + mid + bot
                }
                continue
            }
            o.initialize(repeating: b, count: g.wo)
            for i in 0..<g.kh {
                let ih = oh * g.sh - g.pt + i * g.dh
                guard ih >= 0 && ih < g.h else { continue }
                let row = packed + ih * p.row
                var j = 0
                // Three taps per pass: one load/store of the output row instead of three.
                while j + 3 <= g.kw {
                    let s0 = row + tap[j], s1 = row + tap[j + 1], s2 = row + tap[j + 2]
                    let w0 = wc[i * g.kw + j], w1 = wc[i * g.kw + j + 1], w2 = wc[i * g.kw + j + 2]
                    for ow in 0..<g.wo { o[ow] += w0 * s0[ow] + w1 * s1[ow] + w2 * s2[ow] }
                    j += 3
                }
                while j < g.kw {
                    let s0 = row + tap[j], w0 = wc[i * g.kw + j]
                    for ow in 0..<g.wo { o[ow] += w0 * s0[ow] }
                    j += 1
                }
            }
        }
    }

    /// One (channel, sample) plane of the backward, in Swift (see finch_depthwise_backward_plane):
    /// adds into the weight-gradient partial sums `acc` and the packed input gradient `dpacked`
    /// when they are given.
    private static func backwardPlane(dy: UnsafePointer<Float>, packed: UnsafePointer<Float>, weight wc: UnsafePointer<Float>,
                                      acc: UnsafeMutablePointer<Float>?, dpacked: UnsafeMutablePointer<Float>?,
                                      dyPad: UnsafeMutablePointer<Float>, taps tap: UnsafeBufferPointer<Int>, _ p: Packing,
                                      _ g: ConvGeometry) {
        let edge = (g.kw - 1) * g.dw, gatherDx = g.sw == 1
        for oh in 0..<g.ho {
            let d = dy + oh * g.wo
            if dpacked != nil && gatherDx { (dyPad + edge).update(from: d, count: g.wo) }
            for i in 0..<g.kh {
                let ih = oh * g.sh - g.pt + i * g.dh
                guard ih >= 0 && ih < g.h else { continue }
                let row = ih * p.row
                if let acc {
                    var j = 0
                    while j + 3 <= g.kw {
                        let a0 = acc + (i * g.kw + j) * g.wo, a1 = a0 + g.wo, a2 = a1 + g.wo
                        let s0 = packed + row + tap[j], s1 = packed + row + tap[j + 1]
                        let s2 = packed + row + tap[j + 2]
                        for ow in 0..<g.wo {
                            let v = d[ow]
                            a0[ow] += v * s0[ow]
                            a1[ow] += v * s1[ow]
                            a2[ow] += v * s2[ow]
                        }
                        j += 3
                    }
                    while j < g.kw {
                        let a = acc + (i * g.kw + j) * g.wo, src = packed + row + tap[j]
                        for ow in 0..<g.wo { a[ow] += d[ow] * src[ow] }
                        j += 1
                    }
                }
                guard let dpacked else { continue }
                let t = dpacked + row, wi = wc + i * g.kw
                if gatherDx {
                    var j = 0
                    while j + 3 <= g.kw {
                        let q0 = dyPad + edge - j * g.dw, q1 = q0 - g.dw, q2 = q1 - g.dw
                        let (w0, w1, w2) = (wi[j], wi[j + 1], wi[j + 2])
                        for xx in 0..<p.wpad { t[xx] += w0 * q0[xx] + w1 * q1[xx] + w2 * q2[xx] }
                        j += 3
                    }
                    while j < g.kw {
                        let q0 = dyPad + edge - j * g.dw, w0 = wi[j]
                        for xx in 0..<p.wpad { t[xx] += w0 * q0[xx] }
                        j += 1
                    }
                } else {
                    for j in 0..<g.kw {
                        let tj = t + tap[j], wv = wi[j]
                        for ow in 0..<g.wo { tj[ow] += wv * d[ow] }
                    }
                }
            }
        }
    }
}
