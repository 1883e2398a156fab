/// A Float32 N-d array, row-major (NCHW for images), with reverse-mode autodiff.
///
/// A tensor is a view: `shape`, `strides` and `offset` into a shared `TensorStorage`.
/// Views (reshape of contiguous data, permute, narrow, expand) share storage; kernels
/// that need dense data call `contiguous()`, which copies only when it must.
public final class Tensor {
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int
    public let storage: TensorStorage

    /// Leaf tensors with `requiresGrad` receive gradients in `grad` on `backward()`.
    public var requiresGrad: Bool
    public var grad: Tensor?
    /// The op that produced this tensor; nil for leaves and for results recorded under `noGrad`.
    var gradFn: GradFn?
    /// This recorded result as later ops' tapes see it: same shape and gradFn, no data.
    private var node: Tensor?
    /// Rebuilds this recorded result bit for bit from what its op keeps anyway (see `SavedTensor`).
    var rematerialize: Rebuilt?

    var graphNode: Tensor {
        if let node { return node }
        let n = Tensor(storage: TensorStorage.empty, shape: shape)
        n.requiresGrad = true
        n.gradFn = gradFn
        node = n
        return n
    }

    public init(storage: TensorStorage, shape: [Int], strides: [Int]? = nil, offset: Int = 0) {
        self.storage = storage
        self.shape = shape
        self.strides = strides ?? Shape.contiguousStrides(shape)
        self.offset = offset
        self.requiresGrad = false
    }

    /// Uninitialised storage for kernels that write every element.
    public convenience init(uninitializedShape shape: [Int]) {
        ensure(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.init(storage: TensorStorage(count: Shape.count(shape)), shape: shape)
    }

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        ensure(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.init(storage: TensorStorage(zeros: Shape.count(shape)), shape: shape)
        self.requiresGrad = requiresGrad
    }

    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
        self.requiresGrad = requiresGrad
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        ensure(Shape.count(shape) == values.count,
                     "Tensor: \(values.count) values do not fill shape \(shape)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
        self.requiresGrad = requiresGrad
    }

    public convenience init(_ values: [Float], requiresGrad: Bool = false) {
        self.init(values, shape: [values.count], requiresGrad: requiresGrad)
    }

    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init([scalar], shape: [], requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(zeros: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(repeating: value, shape: shape) }
    public static func zerosLike(_ t: Tensor) -> Tensor { Tensor(zeros: t.shape) }
    public static func arange(_ n: Int) -> Tensor { Tensor((0..<n).map(Float.init), shape: [n]) }

    // MARK: Facts

    public var rank: Int { shape.count }
    public var count: Int { Shape.count(shape) }

    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Pointer to element 0 of this view.
    @inline(__always) public var basePointer: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// Dense data of this tensor: itself when already contiguous, else a copy (recorded on the tape).
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(uninitializedShape: shape)
        Kernels.copyStrided(from: basePointer, shape: shape, strides: strides, to: out.basePointer)
        return record(out, "contiguous", [self], .contiguous) { g in [g] }
    }

    /// Runs `body` on the elements in row-major order without copying when contiguous.
    public func withContiguousBuffer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let c = noGrad { contiguous() }
        return try withExtendedLifetime(c) { try body(UnsafeBufferPointer(start: c.basePointer, count: c.count)) }
    }

    public var scalars: [Float] { withContiguousBuffer { Array($0) } }

    /// The single value of a one-element tensor.
    public var item: Float {
        ensure(count == 1, "item: tensor of shape \(shape) has \(count) elements, not 1")
        return basePointer[0]
    }

    public subscript(_ index: Int...) -> Float {
        ensure(index.count == rank, "subscript: \(index.count) indices for shape \(shape)")
        var o = offset
        for (i, (ix, n)) in zip(index, shape).enumerated() {
            ensure(ix >= 0 && ix < n, "subscript: index \(index) out of range for shape \(shape)")
            o += ix * strides[i]
        }
        return storage.pointer[o]
    }

    /// Same data, no tape history, no gradient requirement.
    public func detach() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// A dense copy owning its storage, never recorded.
    public func copy() -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        Kernels.copyStrided(from: basePointer, shape: shape, strides: strides, to: out.basePointer)
        return out
    }

    /// Overwrites this tensor's elements with `source`'s (same shape) in place; not recorded.
    public func assign(_ source: Tensor) {
        ensure(source.shape == shape, "assign: shape \(source.shape) into \(shape)")
        ensure(isContiguous, "assign: destination of shape \(shape) is not contiguous")
        Kernels.copyStrided(from: source.basePointer, shape: shape, strides: source.strides, to: basePointer)
    }

    /// Marks a leaf as requiring gradients (builder style).
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        ensure(gradFn == nil, "requiringGrad: only leaf tensors can change requiresGrad")
        requiresGrad = flag
        return self
    }

    public func zeroGrad() { grad = nil }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars
        let shown = values.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(values.count > 8 ? ", …" : "")])"
    }
}
