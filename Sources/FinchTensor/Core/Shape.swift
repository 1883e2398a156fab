/// Shape arithmetic shared by the ops: element counts, strides, axis normalisation, broadcasting.
public enum Shape {
    @inline(__always)
    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    /// Maps a possibly negative axis into 0..<rank, stopping with a message naming the op.
    public static func axis(_ axis: Int, rank: Int, op: String, shape: [Int]) -> Int {
        let a = axis < 0 ? axis + rank : axis
        ensure(a >= 0 && a < max(rank, 1), "\(op): axis \(axis) out of range for shape \(shape)")
        return a
    }

    public static func axes(_ axes: [Int]?, rank: Int, op: String, shape: [Int]) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let n = axes.map { axis($0, rank: rank, op: op, shape: shape) }
        ensure(Set(n).count == n.count, "\(op): repeated axis in \(axes) for shape \(shape)")
        return n.sorted()
    }

    /// NumPy broadcasting of two shapes, stopping with a message naming the op and both shapes.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            ensure(da == db || da == 1 || db == 1,
                         "\(op): shapes \(a) and \(b) cannot be broadcast together")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides that read `shape`/`strides` as if broadcast to `target` (stride 0 on broadcast axes).
    public static func broadcastStrides(_ shape: [Int], _ strides: [Int], to target: [Int]) -> [Int] {
        let lead = target.count - shape.count
        var out = [Int](repeating: 0, count: target.count)
        for i in 0..<shape.count where shape[i] != 1 || target[lead + i] == 1 {
            out[lead + i] = shape[i] == 1 ? 0 : strides[i]
        }
        return out
    }
}
