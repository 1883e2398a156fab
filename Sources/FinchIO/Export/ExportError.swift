/// Why a model could not be exported, in any format.
public enum ExportError: Error, CustomStringConvertible {
    case untracedTensor(op: String, shape: [Int])
    case unstableTrace(String)
    case writeFailed(file: String, reason: String)
    /// An op the format cannot express; `module` says where it is ("in module 'blocks.2'", "after module 'stem'").
    case unsupportedOp(format: String, op: String, module: String, reason: String)

    public var description: String {
        switch self {
        case .untracedTensor(let op, let shape):
            return "ONNX export: op \(op) reads a tensor of shape \(shape) that no traced op produced (an op without an ONNX mapping ran in forward)"
        case .unstableTrace(let m): return "ONNX export: the model's forward pass differs between batch sizes (\(m))"
        case .writeFailed(let f, let r): return "\(f): cannot write (\(r))"
        case .unsupportedOp(let format, let op, let module, let reason):
            return "\(format) export: \(op) \(module) cannot be expressed: \(reason)"
        }
    }
}

/// The former name, kept so code written against the ONNX exporter still compiles.
public typealias ONNXExportError = ExportError
