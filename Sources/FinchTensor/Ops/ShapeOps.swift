// Shape ops. Reshape of dense data, permute, narrow/slice and expand are views (no copy);
// concat, stack and pad write new tensors.

extension Tensor {
    /// Resolves one -1 in a requested shape, stopping with a message naming the op.
    private func resolve(_ newShape: [Int], op: String) -> [Int] {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        ensure(unknown.count <= 1 && s.allSatisfy({ $0 >= -1 }), "\(op): invalid shape \(newShape)")
        if let u = unknown.first {
            let known = s.enumerated().filter { $0.offset != u }.reduce(1) { $0 * $1.element }
            ensure(known > 0 && count % known == 0, "\(op): cannot reshape \(shape) into \(newShape)")
            s[u] = count / known
        }
        ensure(Shape.count(s) == count, "\(op): cannot reshape \(shape) (\(count) elements) into \(newShape)")
        return s
    }

    /// Unrecorded view of dense data under a new shape with the same element count.
    func reshapedView(_ newShape: [Int]) -> Tensor {
        ensure(isContiguous)
        return Tensor(storage: storage, shape: newShape, offset: offset)
    }

    /// Same elements in row-major order under a new shape (one axis may be -1).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let s = resolve(newShape, op: "reshape")
        if s == shape { return self }
        // Adding or dropping axes of length 1 (squeeze, unsqueeze) is a view whatever the strides:
        // attention's q, k and v are squeezed out of a permuted qkv and used to be copied here.
        if !isContiguous, !OpTrace.isTracing, let viewStrides = unitAxisStrides(for: s) {
            let out = Tensor(storage: storage, shape: s, strides: viewStrides, offset: offset)
            let inShape = shape
            return record(out, "reshape", [self], nil) { g in [g.reshaped(inShape)] }
        }
        let source = contiguous()
        let out = Tensor(storage: source.storage, shape: s, offset: source.offset)
        let inShape = shape
        return record(out, "reshape", [source], .reshape(shape: s)) { g in [g.reshaped(inShape)] }
    }

    public func reshaped(_ dims: Int...) -> Tensor { reshaped(dims) }

    /// Strides that show this tensor's elements under `target` without moving them, when `target`
    /// differs from the shape only by axes of length 1; nil otherwise. A length-1 axis gets the
    /// stride it would have in a dense layout of what follows it.
    private func unitAxisStrides(for target: [Int]) -> [Int]? {
        let kept = shape.indices.filter { shape[$0] != 1 }
        guard kept.map({ shape[$0] }) == target.filter({ $0 != 1 }) else { return nil }
        var result = [Int](repeating: 1, count: target.count)
        var next = kept.count - 1, inner = 1
        for a in stride(from: target.count - 1, through: 0, by: -1) {
            if target[a] == 1 {
                result[a] = inner
            } else {
                result[a] = strides[kept[next]]
                inner = strides[kept[next]] * shape[kept[next]]
                next -= 1
            }
        }
        return result
    }

    /// Merges axes start...end into one.
    public func flattened(from start: Int = 0, to end: Int = -1) -> Tensor {
        guard rank > 0 else { return reshaped([1]) }
        let s = Shape.axis(start, rank: rank, op: "flatten", shape: shape)
        let e = Shape.axis(end, rank: rank, op: "flatten", shape: shape)
        ensure(s <= e, "flatten: start axis \(start) after end axis \(end) for shape \(shape)")
        let merged = Shape.count(Array(shape[s...e]))
        return reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }

    public func unsqueezed(axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        ensure(a >= 0 && a <= rank, "unsqueeze: axis \(axis) out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    public func squeezed(axis: Int? = nil) -> Tensor {
        if let axis {
            let a = Shape.axis(axis, rank: rank, op: "squeeze", shape: shape)
            guard shape[a] == 1 else { return self }
            var s = shape
            s.remove(at: a)
            return reshaped(s)
        }
        return reshaped(shape.filter { $0 != 1 })
    }

    /// Reorders axes as a strided view.
    public func permuted(_ dims: [Int]) -> Tensor {
        let d = dims.map { Shape.axis($0, rank: rank, op: "permute", shape: shape) }
        ensure(d.count == rank && Set(d).count == rank, "permute: \(dims) is not a permutation for shape \(shape)")
        let out = Tensor(storage: storage, shape: d.map { shape[$0] }, strides: d.map { strides[$0] }, offset: offset)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in d.enumerated() { inverse[a] = i }
        return record(out, "permute", [self], .permute(dims: d)) { g in [g.permuted(inverse)] }
    }

    public func permuted(_ dims: Int...) -> Tensor { permuted(dims) }

    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        let x = Shape.axis(a, rank: rank, op: "transpose", shape: shape)
        let y = Shape.axis(b, rank: rank, op: "transpose", shape: shape)
        var d = Array(0..<rank)
        d.swapAt(x, y)
        return permuted(d)
    }

    /// Broadcasts to `target` as a view with stride 0 on the repeated axes.
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        ensure(target.count >= rank, "expand: cannot expand shape \(shape) to \(target)")
        let lead = target.count - rank
        for i in 0..<rank {
            ensure(shape[i] == target[lead + i] || shape[i] == 1,
                         "expand: cannot expand shape \(shape) to \(target)")
        }
        let out = Tensor(storage: storage, shape: target,
                         strides: Shape.broadcastStrides(shape, strides, to: target), offset: offset)
        let inShape = shape
        return record(out, "expand", [self], .expand(shape: target)) { g in [g.sumToShape(inShape)] }
    }

    /// Elements start..<start+length along `axis`, as a view.
    public func narrowed(axis: Int, start: Int, length: Int) -> Tensor {
        sliced(axis: axis, start: start, end: start + length)
    }

    /// Elements start..<end by `step` along `axis`, as a strided view.
    public func sliced(axis: Int, start: Int, end: Int, step: Int = 1) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "slice", shape: shape)
        ensure(step > 0 && start >= 0 && start <= end && end <= shape[a],
                     "slice: range \(start)..<\(end) step \(step) out of bounds for axis \(a) of shape \(shape)")
        var s = shape, st = strides
        s[a] = (end - start + step - 1) / step
        st[a] = strides[a] * step
        let out = Tensor(storage: storage, shape: s, strides: st, offset: offset + start * strides[a])
        let inShape = shape
        return record(out, "slice", [self], .slice(axis: a, start: start, end: end, step: step)) { g in
            let full = Tensor(zeros: inShape)
            var ds = full.strides
            ds[a] *= step
            Kernels.copyStrided(from: g.basePointer, shape: g.shape, srcStrides: g.strides,
                                to: full.basePointer + start * full.strides[a], dstStrides: ds)
            return [full]
        }
    }

    /// Consecutive pieces of the given sizes along `axis`, as views.
    public func split(sizes: [Int], axis: Int) -> [Tensor] {
        let a = Shape.axis(axis, rank: rank, op: "split", shape: shape)
        ensure(sizes.reduce(0, +) == shape[a] && sizes.allSatisfy { $0 >= 0 },
                     "split: sizes \(sizes) do not add up to \(shape[a]) on axis \(a) of shape \(shape)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return narrowed(axis: a, start: start, length: n)
        }
    }

    /// Splits into chunks of `size` along `axis` (the last may be smaller), like `torch.split(int)`.
    public func split(size: Int, axis: Int) -> [Tensor] {
        let a = Shape.axis(axis, rank: rank, op: "split", shape: shape)
        ensure(size > 0, "split: chunk size \(size) must be positive")
        let n = shape[a]
        return split(sizes: stride(from: 0, to: n, by: size).map { Swift.min(size, n - $0) }, axis: a)
    }

    /// Joins tensors along an existing axis.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        ensure(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0]
        let a = Shape.axis(axis, rank: first.rank, op: "concat", shape: first.shape)
        for t in tensors {
            ensure(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                         "concat: shapes \(tensors.map(\.shape)) differ off axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        let out = Tensor(uninitializedShape: outShape)
        var start = 0
        for t in tensors {
            Kernels.copyStrided(from: t.basePointer, shape: t.shape, srcStrides: t.strides,
                                to: out.basePointer + start * out.strides[a], dstStrides: out.strides)
            start += t.shape[a]
        }
        let sizes = tensors.map { $0.shape[a] }
        return record(out, "concat", tensors, .concat(axis: a)) { g in g.split(sizes: sizes, axis: a).map { $0 } }
    }

    /// Joins tensors of one shape along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        ensure(!tensors.isEmpty, "stack: no tensors")
        ensure(tensors.allSatisfy { $0.shape == tensors[0].shape }, "stack: shapes \(tensors.map(\.shape)) differ")
        return concat(tensors.map { $0.unsqueezed(axis: axis) }, axis: axis < 0 ? axis : axis)
    }

    /// Constant padding; `padding[i]` is (before, after) for the i-th of the last `padding.count` axes.
    public func padded(_ padding: [(Int, Int)], value: Float = 0) -> Tensor {
        ensure(padding.count <= rank, "pad: \(padding.count) axes of padding for shape \(shape)")
        let lead = rank - padding.count
        var outShape = shape
        var origin = 0
        let outStrides = Shape.contiguousStrides(shape.enumerated().map { i, n in
            i < lead ? n : n + padding[i - lead].0 + padding[i - lead].1
        })
        for (j, (b, e)) in padding.enumerated() {
            ensure(b >= 0 && e >= 0, "pad: negative padding \(padding) for shape \(shape)")
            outShape[lead + j] += b + e
            origin += b * outStrides[lead + j]
        }
        let out = Tensor(repeating: value, shape: outShape)
        Kernels.copyStrided(from: basePointer, shape: shape, srcStrides: strides,
                            to: out.basePointer + origin, dstStrides: out.strides)
        let inShape = shape
        return record(out, "pad", [self], .pad(before: (0..<rank).map { $0 < lead ? 0 : padding[$0 - lead].0 },
                                                after: (0..<rank).map { $0 < lead ? 0 : padding[$0 - lead].1 }, value: value)) { g in
            var v = g
            for (j, (b, _)) in padding.enumerated() { v = v.narrowed(axis: lead + j, start: b, length: inShape[lead + j]) }
            return [v]
        }
    }
}
