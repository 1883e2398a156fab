/// Strided iteration shared by copies, broadcasting binary ops and gradient accumulation.
/// Adjacent axes that are laid out contiguously for every operand are merged first, so the
/// common cases (dense, per-channel broadcast, scalar) reduce to one or two long inner loops.
enum StridedLoop {
    /// Merges axes of `shape` where every operand's strides allow it; drops size-1 axes.
    static func coalesce(_ shape: [Int], _ strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides: [[Int]] = Array(repeating: [], count: strides.count)
        for i in 0..<shape.count where shape[i] != 1 {
            if let last = outShape.last,
               (0..<strides.count).allSatisfy({ outStrides[$0].last! == strides[$0][i] * shape[i] }) {
                outShape[outShape.count - 1] = last * shape[i]
                for k in 0..<strides.count { outStrides[k][outStrides[k].count - 1] = strides[k][i] }
            } else {
                outShape.append(shape[i])
                for k in 0..<strides.count { outStrides[k].append(strides[k][i]) }
            }
        }
        if outShape.isEmpty {
            outShape = [1]
            for k in 0..<strides.count { outStrides[k] = [0] }
        }
        return (outShape, outStrides)
    }

    /// Visits every row (all axes but the last) of a coalesced iteration space, in parallel chunks.
    /// `body(offsets, innerCount)` gets each operand's element offset for the row start.
    static func rows(_ shape: [Int], _ strides: [[Int]], grainElements: Int = 1 << 15,
                     _ body: (_ offsets: UnsafePointer<Int>, _ inner: Int) -> Void) {
        let inner = shape[shape.count - 1]
        let outerShape = Array(shape.dropLast())
        let nRows = Shape.count(outerShape)
        let k = strides.count
        // Dense operands coalesce to one long row (a few, with a small batch axis): split the rows
        // themselves, or a gradient sum or copy of a whole activation would run on one thread.
        if nRows < Parallel.threads && inner >= 2 * grainElements {
            let wanted = Parallel.threads * Parallel.partsPerThread
            let pieces = Swift.min((wanted + nRows - 1) / nRows, inner / grainElements)
            Parallel.forEach(nRows * pieces) { range in
                var offsets = [Int](repeating: 0, count: k)
                for item in range {
                    let row = item / pieces, piece = item % pieces
                    let lo = inner * piece / pieces, hi = inner * (piece + 1) / pieces
                    var r = row
                    for j in 0..<k { offsets[j] = lo * strides[j][shape.count - 1] }
                    for d in stride(from: outerShape.count - 1, through: 0, by: -1) {
                        for j in 0..<k { offsets[j] += r % outerShape[d] * strides[j][d] }
                        r /= outerShape[d]
                    }
                    offsets.withUnsafeBufferPointer { body($0.baseAddress!, hi - lo) }
                }
            }
            return
        }
        // The odometer runs once per row, and rows can be a few elements long: it reads flat
        // buffers, outer stride of operand j along axis d at [d·k + j], not nested arrays (a bounds
        // check and an indirection per access). Offsets stay inside the operands, whose element
        // counts were computed with checked arithmetic, so they use wrapping arithmetic.
        let rank = outerShape.count
        var flatStrides = [Int](repeating: 0, count: rank * k)
        for d in 0..<rank { for j in 0..<k { flatStrides[d * k + j] = strides[j][d] } }
        flatStrides.withUnsafeBufferPointer { fs in
            outerShape.withUnsafeBufferPointer { os in
                let st = fs.baseAddress, dims = os.baseAddress
                Parallel.forEach(nRows, grain: max(1, grainElements / max(inner, 1))) { range in
                    let index = UnsafeMutablePointer<Int>.allocate(capacity: max(rank, 1))
                    let off = UnsafeMutablePointer<Int>.allocate(capacity: max(k, 1))
                    defer {
                        index.deallocate()
                        off.deallocate()
                    }
                    off.initialize(repeating: 0, count: k)
                    // Position the counters at the first row of this chunk.
                    var r = range.lowerBound
                    for d in stride(from: rank - 1, through: 0, by: -1) {
                        index[d] = r % dims![d]
                        r /= dims![d]
                        for j in 0..<k { off[j] &+= index[d] &* st![d &* k &+ j] }
                    }
                    for _ in range {
                        body(UnsafePointer(off), inner)
                        // Odometer increment of the outer index.
                        var d = rank &- 1
                        while d >= 0 {
                            index[d] &+= 1
                            let sd = st! + (d &* k)
                            for j in 0..<k { off[j] &+= sd[j] }
                            if index[d] < dims![d] { break }
                            let n = dims![d]
                            for j in 0..<k { off[j] &-= sd[j] &* n }
                            index[d] = 0
                            d &-= 1
                        }
                    }
                }
            }
        }
    }
}

/// Low-level kernels on raw pointers.
public enum Kernels {
    /// Copies a strided view into dense row-major memory.
    public static func copyStrided(from src: UnsafePointer<Float>, shape: [Int], strides: [Int],
                                   to dst: UnsafeMutablePointer<Float>) {
        copyStrided(from: src, shape: shape, srcStrides: strides,
                    to: dst, dstStrides: Shape.contiguousStrides(shape))
    }

    /// Copies between two strided views of the same shape.
    public static func copyStrided(from src: UnsafePointer<Float>, shape: [Int], srcStrides: [Int],
                                   to dst: UnsafeMutablePointer<Float>, dstStrides: [Int]) {
        let n = Shape.count(shape)
        guard n > 0 else { return }
        let (s, st) = StridedLoop.coalesce(shape, [dstStrides, srcStrides])
        let ds = st[0].last!, ss = st[1].last!
        StridedLoop.rows(s, st) { off, inner in
            let d = dst + off[0], p = src + off[1]
            if ds == 1 && ss == 1 {
                d.update(from: p, count: inner)
            } else {
                for i in 0..<inner { d[i &* ds] = p[i &* ss] }  // inside both views: no overflow
            }
        }
    }

    /// dst += src, where dst is contiguous and src has dst's shape or broadcasts to it.
    public static func addInPlace(_ dst: Tensor, _ src: Tensor) {
        ensure(dst.isContiguous, "addInPlace: destination of shape \(dst.shape) is not contiguous")
        let target = dst.shape
        _ = Shape.broadcast(target, src.shape, op: "addInPlace")
        let sStrides = Shape.broadcastStrides(src.shape, src.strides, to: target)
        let (s, st) = StridedLoop.coalesce(target, [dst.strides, sStrides])
        let dp = dst.basePointer, sp = src.basePointer
        let ds = st[0].last!, ss = st[1].last!
        StridedLoop.rows(s, st) { off, inner in
            let d = dp + off[0], p = sp + off[1]
            if ds == 1 && ss == 1 {
                for i in 0..<inner { d[i] += p[i] }
            } else {
                for i in 0..<inner { d[i &* ds] += p[i &* ss] }  // inside both views: no overflow
            }
        }
    }

    /// Dense unary map; `f` is inlined into the loop so it vectorises.
    @inline(__always)
    static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        let xc = x.isContiguous ? x : x.copy()
        let out = Tensor(uninitializedShape: x.shape)
        let src = xc.basePointer, dst = out.basePointer
        Parallel.forEach(out.count, grain: 1 << 15) { r in
            for i in r { dst[i] = f(src[i]) }
        }
        return out
    }

    /// Broadcasting binary map into a new dense tensor.
    @inline(__always)
    static func zip(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) -> Tensor {
        withoutActuallyEscaping(f) { f in zipBroadcast(a, b, op: op, ClosureFunction(f: f)) }
    }

    /// The loop behind both `zip`s. Generic over the function's type so that a kernel type is
    /// specialised and inlined into every row loop: a closure stays an indirect call per element
    /// (10% of a MobileViT forward went to the closures of `+` and `*`).
    @inline(__always)
    static func zipBroadcast<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, op: String, _ f: F) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : Shape.broadcast(a.shape, b.shape, op: op)
        let out = Tensor(uninitializedShape: shape)
        guard out.count > 0 else { return out }
        let ap = a.basePointer, bp = b.basePointer, op = out.basePointer
        if a.shape == b.shape && a.isContiguous && b.isContiguous {
            Parallel.forEach(out.count, grain: 1 << 15) { r in
                for i in r { op[i] = f(ap[i], bp[i]) }
            }
            return out
        }
        let aS = Shape.broadcastStrides(a.shape, a.strides, to: shape)
        let bS = Shape.broadcastStrides(b.shape, b.strides, to: shape)
        let (s, st) = StridedLoop.coalesce(shape, [out.strides, aS, bS])
        let sa = st[1].last!, sb = st[2].last!
        StridedLoop.rows(s, st) { off, inner in
            let o = op + off[0], pa = ap + off[1], pb = bp + off[2]
            if sa == 1 && sb == 1 {
                for i in 0..<inner { o[i] = f(pa[i], pb[i]) }
            } else if sa == 1 && sb == 0 {
                let v = pb[0]
                for i in 0..<inner { o[i] = f(pa[i], v) }
            } else if sa == 0 && sb == 1 {
                let v = pa[0]
                for i in 0..<inner { o[i] = f(v, pb[i]) }
            } else {
                for i in 0..<inner { o[i] = f(pa[i &* sa], pb[i &* sb]) }  // inside both views: no overflow
            }
        }
        return out
    }
}

/// A two-input elementwise function as a value (see `Kernels.zipBroadcast`).
protocol BinaryFunction {
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

struct KernelFunction<K: BinaryKernel>: BinaryFunction {
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { K.apply(a, b) }
}

struct ClosureFunction: BinaryFunction {
    let f: (Float, Float) -> Float
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { f(a, b) }
}
