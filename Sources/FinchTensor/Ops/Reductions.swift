import CFinchKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reduction kernels over a dense tensor viewed as [outer, R, inner] → [outer, inner].
enum ReduceKernels {
    enum Kind { case sum, max }

    static func reduce(_ src: UnsafePointer<Float>, outer: Int, r: Int, inner: Int,
                       into dst: UnsafeMutablePointer<Float>, kind: Kind) {
        if inner == 1 {
            Parallel.forEach(outer, grain: max(1, (1 << 14) / max(r, 1))) { range in
                for o in range {
                    let p = src + o * r
                    dst[o] = kind == .sum ? sumContiguous(p, r) : maxContiguous(p, r)
                }
            }
            return
        }
        // Accumulate whole rows of `inner` so the loop runs along contiguous memory. The grain counts
        // additions, not outputs: a broadcast add's gradient sums thousands of rows into a few
        // hundred outputs, which ran on one thread while the others waited (MobileViT's linear and
        // LayerNorm biases). Each output still adds its rows in order, so the split changes no bit;
        // 16 outputs at least keep each part on whole cache lines of the row.
        Parallel.forEach(outer * inner, grain: max(16, (1 << 14) / max(r, 1))) { range in
            var start = range.lowerBound
            while start < range.upperBound {
                let o = start / inner, i0 = start % inner
                let i1 = min(inner, i0 + (range.upperBound - start))
                let d = dst + o * inner
                let base = src + o * r * inner
                for i in i0..<i1 { d[i] = base[i] }
                for k in 1..<max(r, 1) {
                    let row = base + k * inner
                    if kind == .sum { for i in i0..<i1 { d[i] += row[i] } }
                    else { for i in i0..<i1 { d[i] = Swift.max(d[i], row[i]) } }
                }
                if r == 0 { for i in i0..<i1 { d[i] = kind == .sum ? 0 : -.infinity } }
                start += i1 - i0
            }
        }
    }

    /// Eight independent lanes, summed in blocks of 256 values: vectorises, and keeps rounding
    /// error low on long rows (a lane adds n/256 + 32 terms, not n/8; a 64×64 global pool was
    /// 5× PyTorch float32's distance to float64 with one level).
    @inline(__always)
    static func sumContiguous(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            var block = SIMD8<Float>(repeating: 0)
            let end = Swift.min(n, i + 256)
            while i + 8 <= end {
                block += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                i += 8
            }
            acc += block
        }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func maxContiguous(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var m: Float = -.infinity
        for i in 0..<n where p[i] > m || p[i].isNaN { m = p[i]; if m.isNaN { return m } }
        return m
    }

    /// Reduces `axes` (sorted, normalised) of a dense tensor, returning the keepdim-shaped result.
    static func reduce(_ x: Tensor, axes: [Int], kind: Kind) -> Tensor {
        var cur = x.isContiguous ? x : x.copy()
        var shape = x.shape
        // Runs of consecutive axes are each one [outer, R, inner] pass; go from the last run.
        var runs: [(Int, Int)] = []
        for a in axes {
            if let last = runs.last, last.1 == a { runs[runs.count - 1].1 = a + 1 } else { runs.append((a, a + 1)) }
        }
        for (lo, hi) in runs.reversed() {
            let outer = Shape.count(Array(shape[..<lo]))
            let r = Shape.count(Array(shape[lo..<hi]))
            let inner = Shape.count(Array(shape[hi...]))
            for a in lo..<hi { shape[a] = 1 }
            let out = Tensor(uninitializedShape: shape)
            reduce(cur.basePointer, outer: outer, r: r, inner: inner, into: out.basePointer, kind: kind)
            cur = out
        }
        return cur.detach()
    }
}

extension Tensor {
    private func keepDimShape(_ axes: [Int]) -> [Int] {
        var s = shape
        for a in axes { s[a] = 1 }
        return s
    }

    private func droppedShape(_ axes: [Int]) -> [Int] {
        shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = Shape.axes(axes, rank: rank, op: "sum", shape: shape)
        let kept = keepDimShape(ax)
        var out = ReduceKernels.reduce(self, axes: ax, kind: .sum)
        if !keepDim { out = out.reshapedView(droppedShape(ax)) }
        let inShape = shape
        return record(out, "sum", [self], .sum(axes: ax, keepDims: keepDim)) { g in [g.reshaped(kept).expanded(to: inShape)] }
    }

    public func sum(axis: Int, keepDim: Bool = false) -> Tensor { sum(axes: [axis], keepDim: keepDim) }

    public func mean(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = Shape.axes(axes, rank: rank, op: "mean", shape: shape)
        let n = ax.reduce(1) { $0 * shape[$1] }
        return composite(.mean(axes: ax, keepDims: keepDim), [self]) { sum(axes: ax, keepDim: keepDim) * (1 / Float(n)) }
    }

    public func mean(axis: Int, keepDim: Bool = false) -> Tensor { mean(axes: [axis], keepDim: keepDim) }

    /// Variance over `axes`: biased (divide by n) or unbiased (n − 1), as `torch.var(correction:)`.
    public func variance(axes: [Int]? = nil, unbiased: Bool = true, keepDim: Bool = false) -> Tensor {
        let ax = Shape.axes(axes, rank: rank, op: "var", shape: shape)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let d = self - mean(axes: ax, keepDim: true)
        return (d * d).sum(axes: ax, keepDim: keepDim) * (1 / Float(unbiased ? n - 1 : n))
    }

    /// Maximum over `axes` (PyTorch `amax`): ties share the gradient equally.
    public func max(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = Shape.axes(axes, rank: rank, op: "max", shape: shape)
        ensure(ax.allSatisfy { shape[$0] > 0 }, "max: empty axis in shape \(shape)")
        let kept = keepDimShape(ax)
        let m = ReduceKernels.reduce(self, axes: ax, kind: .max)
        let out = keepDim ? m : m.reshapedView(droppedShape(ax))
        let xd = detach(), inShape = shape
        return record(out, "amax", [self], .amax(axes: ax, keepDims: keepDim)) { g in
            let mask = xd.equal(m)
            let ties = mask.sum(axes: ax, keepDim: true)
            return [mask * (g.reshaped(kept) / ties).expanded(to: inShape)]
        }
    }

    /// Maximum along one axis with the index of the (first) maximum, as `torch.max(dim)`.
    public func max(axis: Int, keepDim: Bool = false) -> (values: Tensor, indices: [Int]) {
        let a = Shape.axis(axis, rank: rank, op: "max", shape: shape)
        let idx = argmax(axis: a)
        var idxShape = shape
        idxShape[a] = 1
        let values = gather(axis: a, indices: idx, indexShape: idxShape)
        return (keepDim ? values : values.reshaped(droppedShape([a])), idx)
    }

    /// Index of the first maximum along `axis`, row-major over the other axes.
    public func argmax(axis: Int) -> [Int] {
        let a = Shape.axis(axis, rank: rank, op: "argmax", shape: shape)
        ensure(shape[a] > 0, "argmax: empty axis \(a) in shape \(shape)")
        let xc = isContiguous ? self : copy()
        let outer = Shape.count(Array(shape[..<a])), r = shape[a], inner = Shape.count(Array(shape[(a + 1)...]))
        var result = [Int](repeating: 0, count: outer * inner)
        let p = xc.basePointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                var bv = p[o * r * inner + i]
                for k in 1..<r {
                    let v = p[(o * r + k) * inner + i]
                    if v > bv || (v.isNaN && !bv.isNaN) { bv = v; best = k }
                }
                result[o * inner + i] = best
            }
        }
        return result
    }

    /// log Σ exp over `axes`, stable for large inputs.
    public func logSumExp(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = Shape.axes(axes, rank: rank, op: "logsumexp", shape: shape)
        let m = noGrad { max(axes: ax, keepDim: true) }
        let safeM = Kernels.map(m) { $0.isFinite ? $0 : 0 }
        let lse = (self - safeM).exp().sum(axes: ax, keepDim: true).log() + safeM
        return keepDim ? lse : lse.reshaped(droppedShape(ax))
    }

    public func softmax(axis: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "softmax", shape: shape)
        let out = SoftmaxKernels.forward(self, axis: a, log: false)
        let od = out.detach()
        return record(out, "softmax", [self], .softmax(axis: a)) { g in
            [SoftmaxKernels.backwardRows(g, od, axis: a) ?? od * (g - (g * od).sum(axes: [a], keepDim: true))]
        }
    }

    public func logSoftmax(axis: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "log_softmax", shape: shape)
        let out = SoftmaxKernels.forward(self, axis: a, log: true)
        let od = out.detach()
        return record(out, "log_softmax", [self], .logSoftmax(axis: a)) { g in
            [g - od.exp() * g.sum(axes: [a], keepDim: true)]
        }
    }
}

enum SoftmaxKernels {
    /// y·(g − Σ g·y) along the last axis in one pass per row, for contiguous g and y: the unfused
    /// expression's bits (the same products, summed by `sumContiguous` as its `sum` does) without its
    /// four temporaries the size of the attention map (4 × 79 MB per MobileViT-XXS layer at 224 px).
    /// Nil for any other layout.
    static func backwardRows(_ g: Tensor, _ y: Tensor, axis a: Int) -> Tensor? {
        guard a == y.rank - 1, g.shape == y.shape, g.isContiguous, y.isContiguous, y.count > 0 else { return nil }
        let r = y.shape[a], rows = y.count / r
        let out = Tensor(uninitializedShape: y.shape)
        let gp = g.basePointer, yp = y.basePointer, dst = out.basePointer
        withExtendedLifetime((g, y)) {
            Parallel.forEach(rows, grain: Swift.max(1, 4096 / r)) { range in
                for row in range {
                    let gr = gp + row &* r, yr = yp + row &* r, o = dst + row &* r
                    // The products go through the output row, which the result then overwrites.
                    for k in 0..<r { o[k] = gr[k] * yr[k] }
                    let s = ReduceKernels.sumContiguous(o, r)
                    for k in 0..<r { o[k] = yr[k] * (gr[k] - s) }
                }
            }
        }
        return out
    }

    static func forward(_ x: Tensor, axis a: Int, log: Bool) -> Tensor {
        let xc = x.isContiguous ? x : x.copy()
        let out = Tensor(uninitializedShape: x.shape)
        let outer = Shape.count(Array(x.shape[..<a])), r = x.shape[a]
        let inner = Shape.count(Array(x.shape[(a + 1)...]))
        let src = xc.basePointer, dst = out.basePointer
        Parallel.forEach(outer * inner, grain: max(1, 4096 / max(r, 1))) { range in
            if inner == 1, finch_softmax_rows(src + range.lowerBound * r, dst + range.lowerBound * r, range.count, r,
                                              log ? 1 : 0) == 1 { return }
            // Offsets stay inside the tensor, whose element count was computed with checked
            // arithmetic: wrapping arithmetic cannot overflow. Contiguous rows (inner == 1) get
            // loops of their own, which the compiler vectorises.
            for oi in range {
                let o = oi / inner, i = oi % inner
                let base = o &* r &* inner &+ i
                let xr = src + base, yr = dst + base
                var m: Float = -.infinity
                if inner == 1 {
                    for k in 0..<r { m = Swift.max(m, xr[k]) }
                } else {
                    for k in 0..<r { m = Swift.max(m, xr[k &* inner]) }
                }
                if !m.isFinite { m = 0 }
                var s: Float = 0
                if inner == 1 {
                    // Rows are contiguous (the usual last-axis softmax): one vectorised exp pass.
                    finch_exp_shifted(xr, yr, r, m)
                    s = ReduceKernels.sumContiguous(yr, r)
                } else {
                    for k in 0..<r {
                        let e = expf(xr[k &* inner] - m)
                        yr[k &* inner] = e
                        s += e
                    }
                }
                if log {
                    let ls = logf(s) + m
                    if inner == 1 {
                        for k in 0..<r { yr[k] = xr[k] - ls }
                    } else {
                        for k in 0..<r { yr[k &* inner] = xr[k &* inner] - ls }
                    }
                } else {
                    let inv = 1 / s
                    if inner == 1 {
                        for k in 0..<r { yr[k] *= inv }
                    } else {
                        for k in 0..<r { yr[k &* inner] *= inv }
                    }
                }
            }
        }
        return out
    }
}
