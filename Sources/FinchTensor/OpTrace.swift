#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An attribute of a traced op (ONNX-style: ints, floats, strings).
public enum TraceAttribute: Equatable, Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
}

/// One op as it ran: ONNX operator name, the tensors it read and wrote, and its attributes.
/// Inputs that are not tensors in the graph (shape vectors, constant scalars) are passed as
/// small constant tensors created by the op, which the exporter turns into initializers.
public struct TracedOp {
    public let type: String
    public let inputs: [Tensor?]
    public let output: Tensor
    public let attributes: [String: TraceAttribute]
}

/// Records the ops of a forward pass (for export to graph formats such as ONNX). Tracing
/// observes; it changes no result. Tensors seen by the trace are kept alive until it ends, so
/// object identities stay unique.
public final class OpTracer {
    public private(set) var ops: [TracedOp] = []
    var suppression = 0

    public init() {}

    func append(_ op: TracedOp) { ops.append(op) }
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

    /// Runs `body` with `tracer` recording every traced op on this thread.
    public static func run<T>(_ tracer: OpTracer, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(tracer).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try withExtendedLifetime(tracer) { try body() }
    }

    /// Runs a composite op's body without recording its parts (the composite records itself).
    @inline(__always)
    static func suppressed<T>(_ body: () -> T) -> T {
        guard let t = active else { return body() }
        t.suppression += 1
        defer { t.suppression -= 1 }
        return body()
    }
}

/// Records an op when a tracer is active (a thread-local check otherwise).
@inline(__always)
func traceOp(_ type: String, _ inputs: [Tensor?], _ output: Tensor, _ attributes: [String: TraceAttribute] = [:]) {
    guard let t = OpTrace.active, t.suppression == 0 else { return }
    t.append(TracedOp(type: type, inputs: inputs, output: output, attributes: attributes))
}

/// A constant tensor operand for a traced op (shape vectors, scalars).
@inline(__always)
func traceConstant(_ values: [Float], shape: [Int]? = nil) -> Tensor {
    Tensor(values, shape: shape ?? [values.count])
}
