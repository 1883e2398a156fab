#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a traced op computes, in Finch's own terms (PyTorch semantics, typed attributes), so
/// that every export format reads the same record and none of them is spoken by the ops.
///
/// Adding an op: add a case here, describe the op once at its `record(...)` (or `composite(...)`)
/// call in FinchTensor, then lower the case in each exporter; the exporters switch over this enum
/// without a `default`, so the compiler lists every one that still lacks it.
/// Adding an exporter: a type in FinchIO conforming to `GraphExporter` that turns a `ModelTrace`
/// (the recorded forward pass) into its format, as `ONNXExporter` does through `ONNXLowering`.
///
/// Operands that are graph tensors are the op's `inputs`; constants (scalars, shapes, axes,
/// indices) are attributes here, and each exporter writes them in its own form.
public enum TracedOpKind: Equatable, Sendable {
    // Elementwise on two tensors, broadcasting as numpy.
    case add, sub, mul, div, pow, maximum, minimum
    // Elementwise on one tensor.
    case neg, exp, log, sqrt, rsqrt, abs
    /// x + s, x · s, s − x, s / x, x^p.
    case addScalar(Float), mulScalar(Float), scalarSub(Float), scalarDiv(Float), powScalar(Float)
    /// Bounds that are nil leave that side open.
    case clamp(min: Float?, max: Float?)
    case relu, relu6, leakyRelu(slope: Float), sigmoid, tanh, hardSigmoid, hardSwish, silu
    case gelu(tanhApproximation: Bool)
    /// Batched matrix product with broadcasting, `torch.matmul`.
    case matmul
    /// Inputs x, weight, bias (bias may be nil); pads are (top, left, bottom, right).
    case conv2d(stride: [Int], pads: [Int], dilation: [Int], groups: Int)
    /// Symmetric padding (h, w).
    case maxPool2d(kernel: [Int], stride: [Int], padding: [Int], dilation: [Int], ceilMode: Bool)
    case avgPool2d(kernel: [Int], stride: [Int], padding: [Int], ceilMode: Bool, countIncludePad: Bool)
    case globalAvgPool2d
    /// Inference batch norm; inputs x, weight, bias, running mean, running var (each after x may
    /// be nil: weight 1, bias 0, mean 0, var 1).
    case batchNorm(epsilon: Float)
    /// Over the last `normalizedRank` axes; inputs x, weight, bias (weight and bias may be nil).
    case layerNorm(normalizedRank: Int, epsilon: Float)
    /// A copy to dense memory (same values and shape).
    case contiguous
    case reshape(shape: [Int])
    case permute(dims: [Int])
    case expand(shape: [Int])
    case slice(axis: Int, start: Int, end: Int, step: Int)
    case concat(axis: Int)
    /// Constant padding per axis (all axes of the input).
    case pad(before: [Int], after: [Int], value: Float)
    case sum(axes: [Int], keepDims: Bool)
    case mean(axes: [Int], keepDims: Bool)
    case amax(axes: [Int], keepDims: Bool)
    case softmax(axis: Int)
    case logSoftmax(axis: Int)
    /// `torch.index_select`.
    case indexSelect(axis: Int, indices: [Int])
    /// Bilinear resize of [N, C, H, W] to `size` with half-pixel centres (`align_corners=False`).
    case resizeBilinear(height: Int, width: Int)
}

/// One op as it ran: what it computes, the tensors it read (nil: an optional operand left out)
/// and the tensor it wrote.
public struct TracedOp {
    public let kind: TracedOpKind
    public let inputs: [Tensor?]
    public let output: Tensor
}

/// Records the ops of a forward pass (for export to graph formats such as ONNX). Tracing
/// observes; it changes no result. Tensors seen by the trace are kept alive until it ends, so
/// object identities stay unique.
public final class OpTracer {
    public private(set) var ops: [TracedOp] = []
    var suppression = 0

    public init() {}

    /// Keeps `op` unless a composite op is recording itself instead.
    @inline(never)
    func append(_ kind: TracedOpKind, _ inputs: [Tensor?], _ output: Tensor) {
        guard suppression == 0 else { return }
        ops.append(TracedOp(kind: kind, inputs: inputs, output: output))
    }
}

public enum OpTrace {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The tracer recording on this thread, if any.
    @inline(__always)
    static var active: OpTracer? {
        guard let p = pthread_getspecific(key) else { return nil }
        return Unmanaged<OpTracer>.fromOpaque(p).takeUnretainedValue()
    }

    /// Whether a tracer records on this thread (fused kernels and views that a trace could not
    /// describe stand aside then).
    public static var isTracing: Bool { active != nil }

    /// Runs `body` with `tracer` recording every traced op on this thread.
    public static func run<T>(_ tracer: OpTracer, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(tracer).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try withExtendedLifetime(tracer) { try body() }
    }
}

/// Describes `out` to an active tracer (only then are `kind` and `operands` evaluated, so an
/// untraced op pays one thread-local read). `operands` default to `inputs`; a nil `kind` leaves
/// the op out of the trace.
@inline(__always)
func trace(_ out: Tensor, _ inputs: [Tensor], _ kind: @autoclosure () -> TracedOpKind?,
           operands: @autoclosure () -> [Tensor?]? = nil) {
    guard let t = OpTrace.active, let k = kind() else { return }
    t.append(k, operands() ?? inputs, out)
}

/// Runs a composite op's body with its parts untraced, then records the composite as one op.
@inline(__always)
func composite(_ kind: @autoclosure () -> TracedOpKind, _ inputs: [Tensor], _ body: () -> Tensor) -> Tensor {
    guard let t = OpTrace.active else { return body() }
    t.suppression += 1
    let out = body()
    t.suppression -= 1
    t.append(kind(), inputs, out)
    return out
}
