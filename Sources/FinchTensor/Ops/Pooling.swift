import CFinchKernels
// 2-D pooling over NCHW planes with PyTorch's output sizes and window rules.
// Every kernel is split over (sample, channel) planes, so threads never share output memory.

/// Output length of a pooling window sweep, as PyTorch's `pooling_output_shape`: with `ceilMode`
/// a last partial window is kept only if it starts inside the input or the left padding.
func poolOutputSize(_ size: Int, kernel k: Int, stride s: Int, pad p: Int, dilation d: Int, ceilMode: Bool) -> Int {
    let span = size + 2 * p - d * (k - 1) - 1
    var out = (ceilMode ? ceilDiv(span, s) : floorDiv(span, s)) + 1
    if ceilMode && (out - 1) * s >= size + p { out -= 1 }
    return out
}

@inline(__always)
func floorDiv(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? a / b : -ceilDiv(-a, b)
}

private func checkPool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                       dilation: (Int, Int), op: String) {
    ensure(x.rank == 4, "\(op): input must be [N, C, H, W], got shape \(x.shape)")
    ensure(kernel.0 >= 1 && kernel.1 >= 1, "\(op): kernel \(kernel) must be positive")
    ensure(stride.0 >= 1 && stride.1 >= 1, "\(op): stride \(stride) must be positive")
    ensure(dilation.0 >= 1 && dilation.1 >= 1, "\(op): dilation \(dilation) must be positive")
    ensure(padding.0 >= 0 && padding.1 >= 0, "\(op): negative padding \(padding)")
    // PyTorch's limit: padding at most half the (dilated) window, so every window sees real data.
    ensure(2 * padding.0 <= (kernel.0 - 1) * dilation.0 + 1 && 2 * padding.1 <= (kernel.1 - 1) * dilation.1 + 1,
                 "\(op): padding \(padding) must be at most half of the kernel \(kernel)")
}

/// Max pooling, `torch.nn.functional.max_pool2d`: padding acts as −∞, the gradient goes to the
/// first maximum of each window (a NaN in the window wins, as in PyTorch).
enum MaxPoolKernel {
    /// When false, the AVX-512 and AVX2 3×3 stride-2 kernels are not used (tests compare the two paths).
    static var allowWide = true
}

public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) -> Tensor {
    let st = stride ?? kernel
    checkPool(x, kernel: kernel, stride: st, padding: padding, dilation: dilation, op: "maxPool2d")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = poolOutputSize(h, kernel: kernel.0, stride: st.0, pad: padding.0, dilation: dilation.0, ceilMode: ceilMode)
    let wo = poolOutputSize(w, kernel: kernel.1, stride: st.1, pad: padding.1, dilation: dilation.1, ceilMode: ceilMode)
    ensure(ho >= 1 && wo >= 1, "maxPool2d: output size \([ho, wo]) is empty for input \(x.shape) " +
                 "with kernel \(kernel), stride \(st), padding \(padding), dilation \(dilation)")
    let g = ConvGeometry(input: [n, c, h, w], weight: [c, 1, kernel.0, kernel.1], stride: st,
                         padding: Padding2d(padding.0, padding.1), dilation: dilation, groups: c, op: "maxPool2d",
                         outputSize: (ho, wo))
    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [n, c, ho, wo])
    // Argmax positions are only kept when a backward pass can need them.
    let keep = GradMode.isEnabled && x.requiresGrad
    var argmax = keep ? [Int32](repeating: 0, count: n * c * ho * wo) : []
    ensure(h * w <= Int(Int32.max), "maxPool2d: plane \(h)×\(w) too large")
    // Per output row/column, the taps that land on real input (padding never wins a −∞ max).
    func taps(_ out: Int, _ size: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> [Range<Int>] {
        (0..<out).map { o in
            let lo = Swift.min(k, Swift.max(0, ceilDiv(p - o * s, d)))
            return lo..<Swift.max(lo, Swift.min(k, ceilDiv(size + p - o * s, d)))
        }
    }
    let rowTaps = taps(ho, h, g.kh, g.sh, g.pt, g.dh), colTaps = taps(wo, w, g.kw, g.sw, g.pl, g.dw)
    ensure(!rowTaps.contains { $0.isEmpty } && !colTaps.contains { $0.isEmpty },
                 "maxPool2d: a window of kernel \(kernel), stride \(st), padding \(padding), dilation \(dilation) " +
                 "misses every element of input \(x.shape)")
    // For each tap (j), the output columns whose window column j lands on real input.
    let tapColumns = g.colRanges
    // ResNet's 3×3 stride-2 pool: sixteen outputs per AVX-512 vector, eight per AVX2 one (4% of a
    // ResNet18 evaluation, 2% of its training, in the loop below, which gathers stride-2 columns one at a time).
    let wide = !OpTrace.isTracing && MaxPoolKernel.allowWide && KernelPath.active >= .avx2 && g.kh == 3
        && g.kw == 3 && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1
    argmax.withUnsafeMutableBufferPointer { am in
        let src = xd.basePointer, dst = out.basePointer
        // An empty array may still hand out a non-nil base address: decide on `keep`.
        let idx = keep ? am.baseAddress : nil
        if wide {
            Parallel.forEach(n * c, grain: Swift.max(1, 2048 / Swift.max(ho * wo * 9, 1))) { range in
                for u in range {
                    _ = finch_max_pool3x3s2(src + u * h * w, h, w, g.pt, g.pl, ho, wo, dst + u * ho * wo,
                                            idx.map { $0 + u * ho * wo })
                }
            }
            return
        }
        Parallel.forEach(n * c, grain: Swift.max(1, 2048 / Swift.max(ho * wo * g.khw, 1))) { range in
            // One output row at a time, tap by tap: the same comparisons in the same order per output
            // as a window-by-window scan, but each tap is one pass over the row.
            let best = UnsafeMutablePointer<Float>.allocate(capacity: wo)
            let bestAt = UnsafeMutablePointer<Int32>.allocate(capacity: wo)
            defer {
                best.deallocate()
                bestAt.deallocate()
            }
            rowTaps.withUnsafeBufferPointer { rt in
                colTaps.withUnsafeBufferPointer { ct in
                    tapColumns.withUnsafeBufferPointer { tc in
                        for u in range {
                            let plane = src + u * h * w
                            for oh in 0..<ho {
                                let rows = rt[oh], top = oh * g.sh - g.pt
                                // PyTorch's scan: start at the first real element, move on `>` or NaN
                                // (so the last NaN wins and ties keep the first maximum).
                                let firstRow = (top + rows.lowerBound * g.dh) * w
                                for ow in 0..<wo {
                                    best[ow] = -.infinity
                                    bestAt[ow] = Int32(truncatingIfNeeded: firstRow + ow * g.sw - g.pl + ct[ow].lowerBound * g.dw)
                                }
                                for i in rows {
                                    let r = (top + i * g.dh) * w - g.pl
                                    for j in 0..<g.kw {
                                        let span = tc[j], base = r + j * g.dw
                                        // Four outputs per step with lane masks: a data-dependent branch
                                        // per comparison mispredicted on half of them (13% of a ResNet18
                                        // forward went to this 3×3 pool).
                                        var ow = span.lowerBound
                                        while ow + 4 <= span.upperBound {
                                            let k0 = base + ow * g.sw
                                            let v = SIMD4<Float>(plane[k0], plane[k0 + g.sw], plane[k0 + 2 * g.sw],
                                                                 plane[k0 + 3 * g.sw])
                                            var b = UnsafeRawPointer(best + ow).loadUnaligned(as: SIMD4<Float>.self)
                                            let take = (v .> b) .| (v .!= v)
                                            b.replace(with: v, where: take)
                                            UnsafeMutableRawPointer(best + ow).storeBytes(of: b, as: SIMD4<Float>.self)
                                            if idx != nil {
                                                let k = SIMD4<Int32>(repeating: Int32(truncatingIfNeeded: k0))
                                                    &+ SIMD4<Int32>(0, 1, 2, 3) &* Int32(truncatingIfNeeded: g.sw)
                                                var at = UnsafeRawPointer(bestAt + ow).loadUnaligned(as: SIMD4<Int32>.self)
                                                at.replace(with: k, where: take)
                                                UnsafeMutableRawPointer(bestAt + ow).storeBytes(of: at, as: SIMD4<Int32>.self)
                                            }
                                            ow += 4
                                        }
                                        while ow < span.upperBound {
                                            let k = base + ow * g.sw
                                            let v = plane[k]
                                            if v > best[ow] || v.isNaN {
                                                best[ow] = v
                                                bestAt[ow] = Int32(truncatingIfNeeded: k)
                                            }
                                            ow += 1
                                        }
                                    }
                                }
                                let o = (u * ho + oh) * wo
                                (dst + o).update(from: best, count: wo)
                                if let idx { (idx + o).update(from: bestAt, count: wo) }
                            }
                        }
                    }
                }
            }
        }
    }
    let inShape = x.shape, indices = argmax
    return record(out, "max_pool2d", [x],
                  .maxPool2d(kernel: [kernel.0, kernel.1], stride: [st.0, st.1], padding: [padding.0, padding.1],
                             dilation: [dilation.0, dilation.1], ceilMode: ceilMode)) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        let dx = Tensor(zeros: inShape)
        indices.withUnsafeBufferPointer { am in
            let gp = dy.basePointer, dp = dx.basePointer, idx = am.baseAddress!
            Parallel.forEach(n * c, grain: Swift.max(1, 8192 / Swift.max(ho * wo, 1))) { range in
                for u in range {
                    let plane = dp + u * h * w
                    for o in (u * ho * wo)..<((u + 1) * ho * wo) { plane[Int(idx[o])] += gp[o] }
                }
            }
        }
        return [dx]
    }
}

/// Average pooling, `torch.nn.functional.avg_pool2d`. A window is clipped to the padded input
/// (which `ceilMode` can overhang); its divisor is the clipped window's size including padding
/// when `countIncludePad`, else the number of real input elements in it.
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
    let st = stride ?? kernel
    checkPool(x, kernel: kernel, stride: st, padding: padding, dilation: (1, 1), op: "avgPool2d")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = poolOutputSize(h, kernel: kernel.0, stride: st.0, pad: padding.0, dilation: 1, ceilMode: ceilMode)
    let wo = poolOutputSize(w, kernel: kernel.1, stride: st.1, pad: padding.1, dilation: 1, ceilMode: ceilMode)
    ensure(ho >= 1 && wo >= 1, "avgPool2d: output size \([ho, wo]) is empty for input \(x.shape) " +
                 "with kernel \(kernel), stride \(st), padding \(padding)")

    // Per output row/column: the real input range and the padded window length.
    func windows(_ size: Int, _ out: Int, _ k: Int, _ s: Int, _ p: Int) -> [(lo: Int, hi: Int, padded: Int)] {
        (0..<out).map { o in
            let start = o * s - p
            let end = Swift.min(start + k, size + p)
            return (Swift.max(start, 0), Swift.min(end, size), end - start)
        }
    }
    let rows = windows(h, ho, kernel.0, st.0, padding.0)
    let cols = windows(w, wo, kernel.1, st.1, padding.1)
    var inverse = [Float](repeating: 0, count: ho * wo)
    for oh in 0..<ho {
        for ow in 0..<wo {
            let r = rows[oh], q = cols[ow]
            let count = countIncludePad ? r.padded * q.padded : (r.hi - r.lo) * (q.hi - q.lo)
            inverse[oh * wo + ow] = 1 / Float(count)
        }
    }

    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [n, c, ho, wo])
    let src = xd.basePointer, dst = out.basePointer
    Parallel.forEach(n * c, grain: Swift.max(1, 2048 / Swift.max(ho * wo * kernel.0 * kernel.1, 1))) { range in
        for u in range {
            let plane = src + u * h * w
            for oh in 0..<ho {
                let r = rows[oh]
                for ow in 0..<wo {
                    let q = cols[ow]
                    var s: Float = 0
                    for ih in r.lo..<r.hi {
                        for iw in q.lo..<q.hi { s += plane[ih * w + iw] }
                    }
                    dst[(u * ho + oh) * wo + ow] = s * inverse[oh * wo + ow]
                }
            }
        }
    }
    let inShape = x.shape
    return record(out, "avg_pool2d", [x],
                  .avgPool2d(kernel: [kernel.0, kernel.1], stride: [st.0, st.1], padding: [padding.0, padding.1],
                             ceilMode: ceilMode, countIncludePad: countIncludePad)) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        let dx = Tensor(zeros: inShape)
        let gp = dy.basePointer, dp = dx.basePointer
        Parallel.forEach(n * c, grain: Swift.max(1, 2048 / Swift.max(ho * wo * kernel.0 * kernel.1, 1))) { range in
            for u in range {
                let plane = dp + u * h * w
                for oh in 0..<ho {
                    let r = rows[oh]
                    for ow in 0..<wo {
                        let q = cols[ow]
                        let v = gp[(u * ho + oh) * wo + ow] * inverse[oh * wo + ow]
                        for ih in r.lo..<r.hi {
                            for iw in q.lo..<q.hi { plane[ih * w + iw] += v }
                        }
                    }
                }
            }
        }
        return [dx]
    }
}

/// Adaptive average pooling, `torch.nn.functional.adaptive_avg_pool2d`: output cell i averages
/// input rows ⌊i·H/out⌋ ..< ⌈(i+1)·H/out⌉ (windows overlap when H is not a multiple of out).
/// `outputSize: (1, 1)` is global average pooling and takes a vectorised fast path.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) -> Tensor {
    ensure(x.rank == 4, "adaptiveAvgPool2d: input must be [N, C, H, W], got shape \(x.shape)")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = outputSize
    ensure(ho >= 1 && wo >= 1, "adaptiveAvgPool2d: output size \(outputSize) must be positive")
    ensure(h >= 1 && w >= 1, "adaptiveAvgPool2d: empty input plane in shape \(x.shape)")
    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [n, c, ho, wo])
    let src = xd.basePointer, dst = out.basePointer
    let inShape = x.shape

    if ho == 1 && wo == 1 {
        let plane = h * w, scale = 1 / Float(plane)
        Parallel.forEach(n * c, grain: Swift.max(1, 16384 / plane)) { range in
            for u in range { dst[u] = ReduceKernels.sumContiguous(src + u * plane, plane) * scale }
        }
        return record(out, "adaptive_avg_pool2d", [x], .globalAvgPool2d) { grad in
            let dy = grad.isContiguous ? grad : grad.copy()
            let dx = Tensor(uninitializedShape: inShape)
            let gp = dy.basePointer, dp = dx.basePointer
            Parallel.forEach(n * c, grain: Swift.max(1, 16384 / plane)) { range in
                for u in range { (dp + u * plane).initialize(repeating: gp[u] * scale, count: plane) }
            }
            return [dx]
        }
    }

    func windows(_ size: Int, _ out: Int) -> [Range<Int>] {
        (0..<out).map { i in (i * size / out)..<(((i + 1) * size + out - 1) / out) }
    }
    let rows = windows(h, ho), cols = windows(w, wo)
    Parallel.forEach(n * c, grain: Swift.max(1, 4096 / Swift.max(h * w, 1))) { range in
        for u in range {
            let plane = src + u * h * w
            for oh in 0..<ho {
                for ow in 0..<wo {
                    var s: Float = 0
                    for ih in rows[oh] {
                        for iw in cols[ow] { s += plane[ih * w + iw] }
                    }
                    dst[(u * ho + oh) * wo + ow] = s / Float(rows[oh].count * cols[ow].count)
                }
            }
        }
    }
    return record(out, "adaptive_avg_pool2d", [x], nil) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        let dx = Tensor(zeros: inShape)
        let gp = dy.basePointer, dp = dx.basePointer
        Parallel.forEach(n * c, grain: Swift.max(1, 4096 / Swift.max(h * w, 1))) { range in
            for u in range {
                let plane = dp + u * h * w
                for oh in 0..<ho {
                    for ow in 0..<wo {
                        let v = gp[(u * ho + oh) * wo + ow] / Float(rows[oh].count * cols[ow].count)
                        for ih in rows[oh] {
                            for iw in cols[ow] { plane[ih * w + iw] += v }
                        }
                    }
                }
            }
        }
        return [dx]
    }
}
