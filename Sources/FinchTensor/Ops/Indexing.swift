// Integer indexing: index_select, gather, one-hot and top-k. Indices are plain [Int]
// (labels and class ids), checked against the axis length.

extension Tensor {
    /// Rows `indices` along `axis`, as `torch.index_select`; repeated indices accumulate in backward.
    public func indexSelect(axis: Int, indices: [Int]) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "index_select", shape: shape)
        let n = shape[a]
        for i in indices { ensure(i >= 0 && i < n, "index_select: index \(i) out of range for axis \(a) of shape \(shape)") }
        let xc = isContiguous ? self : copy()
        let outer = Shape.count(Array(shape[..<a])), inner = Shape.count(Array(shape[(a + 1)...]))
        var outShape = shape
        outShape[a] = indices.count
        let out = Tensor(uninitializedShape: outShape)
        let src = xc.basePointer, dst = out.basePointer, m = indices.count
        for o in 0..<outer {
            for (j, i) in indices.enumerated() {
                (dst + (o * m + j) * inner).update(from: src + (o * n + i) * inner, count: inner)
            }
        }
        let inShape = shape
        return record(out, "index_select", [self], .indexSelect(axis: a, indices: indices)) { g in
            let gc = g.isContiguous ? g : g.copy()
            let full = Tensor(zeros: inShape)
            let gp = gc.basePointer, fp = full.basePointer
            for o in 0..<outer {
                for (j, i) in indices.enumerated() {
                    let d = fp + (o * n + i) * inner, s = gp + (o * m + j) * inner
                    for k in 0..<inner { d[k] += s[k] }
                }
            }
            return [full]
        }
    }

    /// `torch.gather`: out[..., j, ...] = x[..., indices[..., j, ...], ...] along `axis`.
    /// `indices` is row-major with shape `indexShape`, which matches x's shape off `axis`.
    public func gather(axis: Int, indices: [Int], indexShape: [Int]) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "gather", shape: shape)
        ensure(indexShape.count == rank && Shape.count(indexShape) == indices.count
                     && (0..<rank).allSatisfy { $0 == a || indexShape[$0] == shape[$0] },
                     "gather: index shape \(indexShape) (\(indices.count) indices) does not fit shape \(shape) on axis \(a)")
        let n = shape[a], m = indexShape[a]
        for i in indices { ensure(i >= 0 && i < n, "gather: index \(i) out of range for axis \(a) of shape \(shape)") }
        let xc = isContiguous ? self : copy()
        let outer = Shape.count(Array(shape[..<a])), inner = Shape.count(Array(shape[(a + 1)...]))
        let out = Tensor(uninitializedShape: indexShape)
        let src = xc.basePointer, dst = out.basePointer
        for o in 0..<outer {
            for j in 0..<m {
                for k in 0..<inner {
                    let t = (o * m + j) * inner + k
                    dst[t] = src[(o * n + indices[t]) * inner + k]
                }
            }
        }
        let inShape = shape
        return record(out, "gather", [self], nil) { g in
            let gc = g.isContiguous ? g : g.copy()
            let full = Tensor(zeros: inShape)
            let gp = gc.basePointer, fp = full.basePointer
            for o in 0..<outer {
                for j in 0..<m {
                    for k in 0..<inner {
                        let t = (o * m + j) * inner + k
                        fp[(o * n + indices[t]) * inner + k] += gp[t]
                    }
                }
            }
            return [full]
        }
    }

    /// [labels.count, classes] with 1 at each label.
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        let out = Tensor(zeros: [labels.count, classes])
        for (i, l) in labels.enumerated() {
            ensure(l >= 0 && l < classes, "one_hot: label \(l) out of range for \(classes) classes")
            out.basePointer[i * classes + l] = 1
        }
        return out
    }

    /// The `k` largest values along `axis`, sorted descending, and their indices (ties: lower index first).
    public func topk(_ k: Int, axis: Int = -1) -> (values: Tensor, indices: [Int]) {
        let a = Shape.axis(axis, rank: rank, op: "topk", shape: shape)
        let n = shape[a]
        ensure(k >= 0 && k <= n, "topk: k = \(k) out of range for axis \(a) of shape \(shape)")
        let xc = noGrad { permuted(moveAxisLast(a)).contiguous() }
        let rows = xc.count / Swift.max(n, 1)
        var idx = [Int](repeating: 0, count: rows * k)
        let p = xc.basePointer
        for r in 0..<rows {
            let row = p + r * n
            let order = (0..<n).sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
            for j in 0..<k { idx[r * k + j] = order[j] }
        }
        // Gather from the axis-last layout, then move the axis back.
        var lastShape = xc.shape
        lastShape[lastShape.count - 1] = k
        let moved = permuted(moveAxisLast(a))
        let values = moved.gather(axis: -1, indices: idx, indexShape: lastShape)
        var back = Array(0..<(rank - 1))
        back.insert(rank - 1, at: a)
        let result = values.permuted(back)
        // Report indices in the output's own row-major order.
        let outIdx: [Int]
        if a == rank - 1 { outIdx = idx } else {
            let t = Tensor(idx.map(Float.init), shape: lastShape).permuted(back)
            outIdx = t.scalars.map { Int($0) }
        }
        return (result, outIdx)
    }

    private func moveAxisLast(_ a: Int) -> [Int] {
        var d = Array(0..<rank)
        d.remove(at: a)
        d.append(a)
        return d
    }
}
