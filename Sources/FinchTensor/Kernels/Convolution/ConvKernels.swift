// GEMM-based convolution kernels on dense NCHW data.
//
// Layout of the general path, per chunk of `nb` samples:
//   cols  [Cin·kh·kw, nb·Ho·Wo]  row (c, i, j), column (sample, oh, ow) — group g owns rows g·Kg..<(g+1)·Kg
//   W_g   [Cout/g, Kg]           the weight tensor as stored, Kg = Cin/g·kh·kw
//   buf   [Cout, nb·Ho·Wo]       = W_g · cols_g for each group, then scattered into NCHW
// Batching samples into the GEMM's n dimension keeps BLAS efficient on the small late-stage
// planes (4×4 at 128 px), where one GEMM per sample would have n = 16.

enum ConvKernels {
    /// Upper bound on the column buffer, in floats (8 MB). Measured on 3×3 convolutions at batch 32
    /// (16→16 at 64², 64→64 at 32²) on a 2-core machine with 32 MB L3: 8 MB was 10–25% faster than
    /// one sample per chunk (narrower GEMMs) and than 16–32 MB (im2col's output falls out of L3
    /// before the GEMM reads it, and glibc maps a fresh 32 MB block on every call).
    /// Variable so tests can force chunking.
    static var columnBudget = 2 << 20

    /// Pointwise convolutions on planes of at least this many pixels run one GEMM per sample
    /// straight from the input; smaller planes go through the batched column path. Measured at
    /// batch 32: per-sample GEMMs win at 64² (no copy or scatter), tie at 16², and lose 2–4× at
    /// 8² and 4² (96→576, 576→1024), where n = H·W is too narrow for BLAS.
    static var pointwiseDirectMinPlane = 256

    // MARK: Forward

    /// `activation` is applied to each output plane (after the bias) by the path that wrote it, as
    /// soon as the plane or the sample is done: a pass over the whole output afterwards reads it back
    /// from memory (0.88 ns per element for BatchNorm+SiLU against 0.46 from cache, measured on this
    /// machine's 32 MB output of MobileViT-XXS's stem).
    ///
    /// With a `residual` (a tensor of the output's shape) each plane becomes act(plane + residual
    /// plane) instead: a residual block's sum and final activation, done with the convolution.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, activation: FusedActivation = .identity,
                        residual: UnsafePointer<Float>? = nil, mean: UnsafePointer<Float>? = nil,
                        scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil) {
        guard g.n > 0 && g.cout > 0 && g.hw > 0 else { return }
        let epilogue = Epilogue(activation: activation, residual: residual, mean: mean, scale: scale, shift: shift)
        let all = 0..<g.n * g.cout
        if g.isDepthwise {
            // Depthwise convolutions end no residual block in the zoo; a residual gets its own pass.
            DepthwiseConv.forward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue)
        } else if g.isPointwise && g.hw >= pointwiseDirectMinPlane {
            pointwiseForward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue)
        } else if SmallPlanePointwiseConv.applies(to: g),
                  SmallPlanePointwiseConv.forward(x: x, weight: weight, bias: bias, out: out, g) {
            // Planes of at most a few hundred values: the whole output is small enough to stay in cache.
            activatePlanes(out, planes: all, g, bias: nil, epilogue)
        } else if WinogradConv.applies(to: g) {
            WinogradConv.forward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue)
        } else if FewChannelConv.applies(to: g),
                  FewChannelConv.forward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue) {
            return
        } else {
            im2colForward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue)
        }
    }

    /// What a path does to the values of an output channel once they are written:
    /// y = act((x + bias − mean[co])·scale[co] + shift[co] (+ residual)), mean, scale and shift being
    /// evaluation BatchNorm's μ, γ/√(σ² + ε) and β (so its weights need no folding), bias a
    /// convolution bias the path has not added yet, residual a tensor of the output's shape.
    struct Epilogue {
        var activation: FusedActivation = .identity
        var residual: UnsafePointer<Float>? = nil
        var mean: UnsafePointer<Float>? = nil
        var scale: UnsafePointer<Float>? = nil
        var shift: UnsafePointer<Float>? = nil

        static let none = Epilogue()
        var isNone: Bool { activation == .identity && residual == nil && mean == nil && scale == nil && shift == nil }

        /// As the affine kernels' (x − mean)·scale + shift; with no bias to add, x − μ exactly as
        /// PyTorch's BatchNorm computes it.
        @inline(__always)
        func affine(channel co: Int, bias: Float) -> (mean: Float, scale: Float, shift: Float) {
            ((mean?[co] ?? 0) - bias, scale?[co] ?? 1, shift?[co] ?? 0)
        }

        /// Values offset ..< offset + count of the output at `out`, all of channel `co`.
        @inline(__always)
        func apply(_ out: UnsafeMutablePointer<Float>, offset: Int, count: Int, channel co: Int, bias: Float = 0) {
            let (m, s, t) = affine(channel: co, bias: bias)
            if let residual {
                Kernels.residualActivation(out + offset, residual + offset, out + offset, count, mean: m, scale: s,
                                           shift: t, activation)
            } else if activation != .identity || m != 0 || s != 1 || t != 0 {
                Kernels.affineActivation(out + offset, out + offset, count, mean: m, scale: s, shift: t, activation)
            }
        }
    }

    /// The epilogue, after bias[co], over output planes u = sample·Cout + co, split over the threads.
    static func activatePlanes(_ out: UnsafeMutablePointer<Float>, planes: Range<Int>, _ g: ConvGeometry,
                               bias: UnsafePointer<Float>?, _ epilogue: Epilogue) {
        if epilogue.isNone && bias == nil { return }
        Parallel.forEach(planes.count, grain: Swift.max(1, 16384 / g.hw)) { range in
            for i in range {
                let u = planes.lowerBound + i, co = u % g.cout
                epilogue.apply(out, offset: u * g.hw, count: g.hw, channel: co, bias: bias?[co] ?? 0)
            }
        }
    }

    /// Samples per chunk so that the column buffer stays within `columnBudget`.
    static func chunkSize(_ g: ConvGeometry) -> Int {
        let perSample = Swift.max(1, g.c * g.khw * g.hw)
        return Swift.max(1, Swift.min(g.n, columnBudget / perSample))
    }

    static func pointwiseForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: Epilogue = .none) {
        // Each sample's [Cin, H·W] block already is the column matrix. With an epilogue the bias
        // joins its pass; without one it is filled in first for a GEMM with β = 1.
        let fill = epilogue.isNone ? bias : nil
        if let fill { fillBias(out, n: g.n, c: g.cout, plane: g.hw, bias: fill) }
        for s in 0..<g.n {
            for grp in 0..<g.groups {
                Gemm.sgemm(transA: false, transB: false, m: g.coutg, n: g.hw, k: g.cg,
                           a: weight + grp * g.coutg * g.cg, lda: g.cg,
                           b: x + (s * g.c + grp * g.cg) * g.hw, ldb: g.hw,
                           beta: fill == nil ? 0 : 1,
                           c: out + (s * g.cout + grp * g.coutg) * g.hw, ldc: g.hw)
            }
            if !epilogue.isNone {
                activatePlanes(out, planes: s * g.cout..<(s + 1) * g.cout, g, bias: bias, epilogue)
            }
        }
    }

    static func im2colForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: Epilogue = .none) {
        if bandedForward(x: x, weight: weight, bias: bias, out: out, g, epilogue: epilogue) { return }
        let nbMax = chunkSize(g)
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.c * g.khw * g.hw * nbMax)
        defer { cols.deallocate() }
        // With one sample per chunk, [Cout, Ho·Wo] is that sample's NCHW output: write it in place.
        let buf: UnsafeMutablePointer<Float>? = nbMax > 1 ? .allocate(capacity: g.cout * g.hw * nbMax) : nil
        defer { buf?.deallocate() }
        if nbMax == 1, let bias { fillBias(out, n: g.n, c: g.cout, plane: g.hw, bias: bias) }

        var n0 = 0
        while n0 < g.n {
            let nb = Swift.min(nbMax, g.n - n0)
            let ld = nb * g.hw
            im2col(x, g, n0: n0, nb: nb, into: cols)
            for grp in 0..<g.groups {
                let a = weight + grp * g.coutg * g.kg, b = cols + grp * g.kg * ld
                if let buf {
                    Gemm.sgemm(transA: false, transB: false, m: g.coutg, n: ld, k: g.kg, a: a, lda: g.kg,
                               b: b, ldb: ld, c: buf + grp * g.coutg * ld, ldc: ld)
                } else {
                    Gemm.sgemm(transA: false, transB: false, m: g.coutg, n: ld, k: g.kg, a: a, lda: g.kg,
                               b: b, ldb: ld, beta: bias == nil ? 0 : 1,
                               c: out + (n0 * g.cout + grp * g.coutg) * g.hw, ldc: ld)
                }
            }
            if let buf {
                scatter(buf, g, n0: n0, nb: nb, bias: bias, epilogue: epilogue, into: out)
            } else if !epilogue.isNone {
                activatePlanes(out, planes: n0 * g.cout..<(n0 + nb) * g.cout, g, bias: nil, epilogue)
            }
            n0 += nb
        }
    }

    /// Column floats per band of output rows in `bandedForward`: about half a core's L2.
    static var bandBudget = 1 << 18

    /// Large planes whose columns would not fit in cache (ResNet's 7×7 stem: 2.4 MB a sample)
    /// are done a sample per thread in bands of output rows: each band's columns are written and
    /// read back by the same core while in its L2, and the sample's planes get their epilogue
    /// while still in cache. Returns false when the shape does not qualify.
    static func bandedForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, epilogue: Epilogue) -> Bool {
        guard let rowsPerBand = bandRows(g) else { return false }
        let k = g.c * g.khw
        Parallel.forEach(g.n) { samples in
            withBandColumns(g, rowsPerBand) { cols in
                for s in samples {
                    forEachBand(x, g, sample: s, rowsPerBand, into: cols) { oh0, width in
                        Gemm.sgemm(transA: false, transB: false, m: g.cout, n: width, k: k, a: weight, lda: k,
                                   b: cols, ldb: width, c: out + s * g.cout * g.hw + oh0 * g.wo, ldc: g.hw,
                                   split: false)
                    }
                    activatePlanes(out, planes: s * g.cout..<(s + 1) * g.cout, g, bias: bias, epilogue)
                }
            }
        }
        return true
    }

    /// dW for the shapes `bandedForward` takes, the same way: each part's samples band by band,
    /// columns in L2, into the part's own dW; the parts' dWs are then summed in a fixed order.
    static func bandedWeightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                     _ g: ConvGeometry) -> Bool {
        guard let rowsPerBand = bandRows(g) else { return false }
        let k = g.c * g.khw
        let parts = Swift.min(g.n, Parallel.threads)
        Parallel.partialSums(parts, size: g.cout * k, into: dw) { range, target in
            withBandColumns(g, rowsPerBand) { cols in
                for p in range {
                    var beta: Float = 0
                    for s in g.n * p / parts..<g.n * (p + 1) / parts {
                        forEachBand(x, g, sample: s, rowsPerBand, into: cols) { oh0, width in
                            Gemm.sgemm(transA: false, transB: true, m: g.cout, n: k, k: width,
                                       a: dy + s * g.cout * g.hw + oh0 * g.wo, lda: g.hw, b: cols, ldb: width,
                                       beta: beta, c: target(p), ldc: k, split: false)
                            beta = 1
                        }
                    }
                }
            }
        }
        return true
    }

    /// One band's column buffer for a thread of `bandedForward` or `bandedWeightGradient`.
    private static func withBandColumns(_ g: ConvGeometry, _ rowsPerBand: Int,
                                        _ body: (UnsafeMutablePointer<Float>) -> Void) {
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.c * g.khw * rowsPerBand * g.wo)
        defer { cols.deallocate() }
        body(cols)
    }

    /// Writes each band of output rows' columns of sample `s` into `cols`, then calls
    /// `body(first row, band width = rows · Wo)` while they are in cache.
    private static func forEachBand(_ x: UnsafePointer<Float>, _ g: ConvGeometry, sample s: Int, _ rowsPerBand: Int,
                                    into cols: UnsafeMutablePointer<Float>, _ body: (Int, Int) -> Void) {
        for oh0 in stride(from: 0, to: g.ho, by: rowsPerBand) {
            let rows = oh0..<Swift.min(g.ho, oh0 + rowsPerBand)
            im2col(x, g, n0: s, nb: 1, rows: rows, into: cols)
            body(oh0, rows.count * g.wo)
        }
    }

    /// Output rows per band when `bandedForward` takes the shape, else nil.
    static func bandRows(_ g: ConvGeometry) -> Int? {
        let k = g.c * g.khw
        guard Parallel.gemmSplit, g.groups == 1, g.n >= Parallel.threads, k * g.hw > 2 * bandBudget else { return nil }
        let bands = (g.hw * k + bandBudget - 1) / bandBudget
        return (g.ho + bands - 1) / bands
    }

    // MARK: Backward

    /// Overwrites dx and dw for whichever pointers are non-nil.
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        guard dx != nil || dw != nil else { return }
        if g.n == 0 || g.hw == 0 {
            dw?.initialize(repeating: 0, count: g.cout * g.kg)
            dx?.initialize(repeating: 0, count: g.n * g.c * g.inPlane)
            return
        }
        if g.isDepthwise {
            DepthwiseConv.backward(dy: dy, x: x, weight: weight, dx: dx, dw: dw, g)
        } else if g.isPointwise && g.hw >= pointwiseDirectMinPlane {
            pointwiseBackward(dy: dy, x: x, weight: weight, dx: dx, dw: dw, g)
        } else if WinogradConv.applies(to: g), dx == nil || WinogradConv.appliesToInputGradient(g) {
            if let dw { WinogradConv.weightGradient(dy: dy, x: x, dw: dw, g) }
            if let dx { WinogradConv.inputGradient(dy: dy, weight: weight, dx: dx, g) }
        } else {
            im2colBackward(dy: dy, x: x, weight: weight, dx: dx, dw: dw, g)
        }
    }

    static func pointwiseBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        for s in 0..<g.n {
            for grp in 0..<g.groups {
                let dyg = dy + (s * g.cout + grp * g.coutg) * g.hw
                let xg = x + (s * g.c + grp * g.cg) * g.hw
                let wg = grp * g.coutg * g.cg
                if let dw {
                    // dW_g += dY_g · X_gᵀ, accumulated over the batch by BLAS (beta 1 after the first sample).
                    Gemm.sgemm(transA: false, transB: true, m: g.coutg, n: g.cg, k: g.hw,
                               a: dyg, lda: g.hw, b: xg, ldb: g.hw, beta: s == 0 ? 0 : 1,
                               c: dw + wg, ldc: g.cg)
                }
                if let dx {
                    Gemm.sgemm(transA: true, transB: false, m: g.cg, n: g.hw, k: g.coutg,
                               a: weight + wg, lda: g.cg, b: dyg, ldb: g.hw,
                               c: dx + (s * g.c + grp * g.cg) * g.hw, ldc: g.hw)
                }
            }
        }
    }

    static func im2colBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        var dw = dw
        if let target = dw, bandedWeightGradient(dy: dy, x: x, dw: target, g) { dw = nil }
        guard dx != nil || dw != nil else { return }
        let nbMax = chunkSize(g)
        // A 1×1 stride-1 convolution's columns are its input planes side by side (im2col gathers
        // them whole), and each input value has one column entry: scattering whole planes replaces
        // col2im's zeroing and accumulation (ResNet50's small-plane 1×1 layers).
        let planes = g.isPointwise && pointwiseColumnPlanes
        // col2im accumulates.
        if !planes { dx?.initialize(repeating: 0, count: g.n * g.c * g.inPlane) }
        // One buffer serves as cols(x) for dW and is then overwritten by Wᵀ·dY for dX,
        // so recomputing im2col costs no second allocation.
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.c * g.khw * g.hw * nbMax)
        defer { cols.deallocate() }
        let buf: UnsafeMutablePointer<Float>? = nbMax > 1 ? .allocate(capacity: g.cout * g.hw * nbMax) : nil
        defer { buf?.deallocate() }

        var n0 = 0
        while n0 < g.n {
            let nb = Swift.min(nbMax, g.n - n0)
            let ld = nb * g.hw
            let dyc: UnsafePointer<Float>
            if let buf {
                gather(dy, g, n0: n0, nb: nb, into: buf)
                dyc = UnsafePointer(buf)
            } else {
                dyc = dy + n0 * g.cout * g.hw
            }
            if let dw {
                im2col(x, g, n0: n0, nb: nb, into: cols)
                for grp in 0..<g.groups {
                    Gemm.sgemm(transA: false, transB: true, m: g.coutg, n: g.kg, k: ld,
                               a: dyc + grp * g.coutg * ld, lda: ld, b: cols + grp * g.kg * ld, ldb: ld,
                               beta: n0 == 0 ? 0 : 1, c: dw + grp * g.coutg * g.kg, ldc: g.kg)
                }
            }
            if let dx {
                for grp in 0..<g.groups {
                    Gemm.sgemm(transA: true, transB: false, m: g.kg, n: ld, k: g.coutg,
                               a: weight + grp * g.coutg * g.kg, lda: g.kg, b: dyc + grp * g.coutg * ld, ldb: ld,
                               c: cols + grp * g.kg * ld, ldc: ld)
                }
                if planes {
                    scatterGradientPlanes(cols, g, n0: n0, nb: nb, into: dx)
                } else {
                    col2im(cols, g, n0: n0, nb: nb, into: dx)
                }
            }
            n0 += nb
        }
    }

    // MARK: Layout kernels

    /// cols[(c, i, j), (s, oh, ow)] = x[n0 + s, c, oh·sh − pt + i·dh, ow·sw − pl + j·dw], zero in the padding.
    /// `rows` limits the columns to a band of output rows (then [Cin·kh·kw, nb·rows·Wo]).
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int, rows band: Range<Int>? = nil,
                       into cols: UnsafeMutablePointer<Float>) {
        if band == nil, g.isPointwise && pointwiseColumnPlanes {
            // The columns of a 1×1 stride-1 convolution are its input planes side by side.
            return gatherPlanes(x, channels: g.c, plane: g.hw, n0: n0, nb: nb, into: cols)
        }
        if band == nil, smallPlaneColumns(g) { return smallPlaneIm2col(x, g, n0: n0, nb: nb, into: cols) }
        let rowR = g.rowRanges, colR = g.colRanges
        let band = band ?? 0..<g.ho
        let bandSize = band.count * g.wo, ld = nb * bandSize
        let units = g.c * g.khw * nb
        Parallel.forEach(units, grain: Swift.max(1, 8192 / Swift.max(bandSize, 1))) { range in
            // Offsets stay inside the column buffer and the input, whose sizes were computed
            // with checked arithmetic (ConvGeometry), so wrapping arithmetic cannot overflow.
            for u in range {
                let r = u / nb, s = u % nb
                let c = r / g.khw, i = (r % g.khw) / g.kw, j = r % g.kw
                let dst = cols + (r &* ld &+ s &* bandSize &- band.lowerBound &* g.wo)
                let plane = x + (((n0 &+ s) &* g.c &+ c) &* g.inPlane)
                let rows = rowR[i], span = colR[j]
                let shift = j &* g.dw &- g.pl
                for oh in band {
                    let d = dst + (oh &* g.wo)
                    guard rows.contains(oh) else {
                        d.update(repeating: 0, count: g.wo)
                        continue
                    }
                    let src = plane + ((oh &* g.sh &- g.pt &+ i &* g.dh) &* g.w)
                    if span.lowerBound > 0 { d.update(repeating: 0, count: span.lowerBound) }
                    if g.sw == 1 {
                        if !span.isEmpty {
                            (d + span.lowerBound).update(from: src + (span.lowerBound &+ shift), count: span.count)
                        }
                    } else {
                        for ow in span { d[ow] = src[ow &* g.sw &+ shift] }
                    }
                    if span.upperBound < g.wo {
                        (d + span.upperBound).update(repeating: 0, count: g.wo &- span.upperBound)
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: dx[n0 + s, c, ih, iw] += every column entry that read it.
    /// Split over (sample, channel) planes, so no two threads write the same memory.
    static func col2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                       into dx: UnsafeMutablePointer<Float>) {
        if smallPlaneColumns(g) { return smallPlaneCol2im(cols, g, n0: n0, nb: nb, into: dx) }
        let rowR = g.rowRanges, colR = g.colRanges
        let ld = nb * g.hw
        Parallel.forEach(nb * g.c, grain: Swift.max(1, 4096 / Swift.max(g.hw * g.khw, 1))) { range in
            // As in im2col, offsets stay inside buffers whose sizes were checked: wrapping arithmetic.
            for u in range {
                let s = u / g.c, c = u % g.c
                let plane = dx + (((n0 &+ s) &* g.c &+ c) &* g.inPlane)
                for i in 0..<g.kh {
                    for j in 0..<g.kw {
                        let src = cols + ((c &* g.khw &+ i &* g.kw &+ j) &* ld &+ s &* g.hw)
                        let span = colR[j]
                        let shift = j &* g.dw &- g.pl
                        for oh in rowR[i] {
                            let d = plane + ((oh &* g.sh &- g.pt &+ i &* g.dh) &* g.w &+ shift)
                            let sr = src + (oh &* g.wo)
                            if g.sw == 1 {
                                for ow in span { d[ow] += sr[ow] }
                            } else {
                                for ow in span { d[ow &* g.sw] += sr[ow] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// buf [Cout, nb·HW] → out[n0 + s, co, :], adding bias[co] and applying the epilogue on the way.
    static func scatter(_ buf: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                        bias: UnsafePointer<Float>?, epilogue: Epilogue = .none,
                        into out: UnsafeMutablePointer<Float>) {
        let hw = g.hw, ld = nb * hw
        Parallel.forEach(nb * g.cout, grain: Swift.max(1, 16384 / hw)) { range in
            for u in range {
                let s = u / g.cout, co = u % g.cout
                let src = buf + co * ld + s * hw
                let plane = ((n0 + s) * g.cout + co) * hw, dst = out + plane
                if epilogue.residual != nil {
                    dst.update(from: src, count: hw)
                    epilogue.apply(out, offset: plane, count: hw, channel: co, bias: bias?[co] ?? 0)
                } else if !epilogue.isNone {
                    let (m, sc, t) = epilogue.affine(channel: co, bias: bias?[co] ?? 0)
                    Kernels.affineActivation(src, dst, hw, mean: m, scale: sc, shift: t, epilogue.activation)
                } else if let bias {
                    let b = bias[co]
                    for k in 0..<hw { dst[k] = src[k] + b }
                } else {
                    dst.update(from: src, count: hw)
                }
            }
        }
    }

    /// out[n0 + s, co, :] → buf [Cout, nb·HW], the inverse of `scatter`.
    static func gather(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                       into buf: UnsafeMutablePointer<Float>) {
        gatherPlanes(dy, channels: g.cout, plane: g.hw, n0: n0, nb: nb, into: buf)
    }

    /// t[n0 + s, c, :] → buf [channels, nb·plane] for a tensor t [N, channels, plane].
    static func gatherPlanes(_ t: UnsafePointer<Float>, channels: Int, plane: Int, n0: Int, nb: Int,
                             into buf: UnsafeMutablePointer<Float>) {
        let ld = nb * plane
        Parallel.forEach(nb * channels, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
            for u in range {
                let s = u / channels, c = u % channels
                (buf + c * ld + s * plane).update(from: t + ((n0 + s) * channels + c) * plane, count: plane)
            }
        }
    }

    /// When false, 1×1 stride-1 convolutions on the column path go through the row-by-row im2col
    /// and col2im like every other shape (tests compare the two).
    static var pointwiseColumnPlanes = true

    /// col2im for a 1×1 stride-1 convolution: cols [Cin, nb·HW] → dx[n0 + s, c, :], overwriting.
    /// Adding +0 keeps col2im's result bit for bit, which sums onto zeros (−0 becomes +0).
    static func scatterGradientPlanes(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                                      into dx: UnsafeMutablePointer<Float>) {
        let hw = g.hw, ld = nb * hw
        Parallel.forEach(nb * g.c, grain: Swift.max(1, 16384 / hw)) { range in
            // Offsets stay inside cols and dx, whose sizes were checked: wrapping arithmetic.
            for u in range {
                let s = u / g.c, c = u % g.c
                let src = cols + (c &* ld &+ s &* hw), dst = dx + (((n0 &+ s) &* g.c &+ c) &* hw)
                for k in 0..<hw { dst[k] = src[k] + 0 }
            }
        }
    }

    /// Initialises every [plane] row of an [n, c, plane] buffer with its channel's bias,
    /// so a following GEMM with beta 1 adds onto it.
    static func fillBias(_ out: UnsafeMutablePointer<Float>, n: Int, c: Int, plane: Int, bias: UnsafePointer<Float>) {
        Parallel.forEach(n * c, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
            for u in range { (out + u * plane).initialize(repeating: bias[u % c], count: plane) }
        }
    }

    /// Per-channel sums of an [n, c, plane] tensor: the bias gradient of conv and of batch norm.
    static func channelSums(_ t: Tensor, n: Int, c: Int, plane: Int) -> Tensor {
        let out = Tensor(uninitializedShape: [c])
        let src = t.basePointer, dst = out.basePointer
        Parallel.forEach(c, grain: Swift.max(1, 16384 / Swift.max(n * plane, 1))) { range in
            for ch in range {
                var acc: Double = 0
                for s in 0..<n { acc += Double(ReduceKernels.sumContiguous(src + (s * c + ch) * plane, plane)) }
                dst[ch] = Float(acc)
            }
        }
        return out
    }
}
