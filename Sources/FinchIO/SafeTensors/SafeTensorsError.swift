/// Everything that can go wrong reading or writing a safetensors file.
///
/// Every case carries the file's path, and every case about one entry carries its key, so a
/// message read in a log without the call site still says which file and which tensor to look at.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// open/stat/mmap failed, or the path is not a regular file; `reason` holds the errno text.
    case unreadable(file: String, reason: String)
    /// Fewer than the 8 bytes that hold the header length.
    case fileTooShort(file: String, size: Int)
    /// Header length beyond `limit`: rejected before allocating or parsing anything.
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    /// Header length runs past the end of the file.
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    case headerNotUTF8(file: String)
    /// More JSON items (values, keys) than the budget for the file's data size: refused before
    /// parsing, since a parsed item costs hundreds of bytes however few it took in the file.
    case headerTooComplex(file: String, limit: Int, dataSize: Int)
    case headerNotJSON(file: String, reason: String)
    /// Valid JSON, but not an object at the top level.
    case headerNotObject(file: String)
    /// `__metadata__` is not an object of strings; `key` is the offending entry when there is one.
    case invalidMetadata(file: String, key: String?, reason: String)
    /// A tensor entry that is not an object, lacks `dtype`/`shape`/`data_offsets`, has them of
    /// the wrong type, a negative or non-integer dimension, or offsets that are not [begin, end].
    case invalidEntry(file: String, key: String, reason: String)
    case unknownDType(file: String, key: String, dtype: String)
    /// `data_offsets` end lies beyond the data buffer.
    case dataPastEnd(file: String, key: String, end: Int, bufferSize: Int)
    /// `end - begin` differs from the element count times the dtype size.
    case byteCountMismatch(file: String, key: String, dtype: SafeTensorsDType, shape: [Int],
                           expected: Int, actual: Int)
    /// Two entries share bytes (ordered by offset, `key` starts before `previous` ends).
    case overlappingData(file: String, key: String, previous: String)
    /// Unclaimed bytes before `key`; the reference implementation rejects holes, so do we.
    case gapBeforeData(file: String, key: String, begin: Int, expected: Int)
    /// Bytes after the last tensor that no entry claims (also rejected by the reference).
    case trailingData(file: String, used: Int, bufferSize: Int)
    case tensorNotFound(file: String, name: String, nearest: [String], available: Int)
    /// The tensor exists but its dtype does not fit the accessor used.
    case wrongDType(file: String, key: String, dtype: SafeTensorsDType, wanted: String)
    /// An element does not fit the requested type (a U64 above Int64.max).
    case valueOutOfRange(file: String, key: String, reason: String)
    /// Writer input that cannot be encoded: duplicate or reserved name, count not matching shape.
    case invalidValue(file: String, key: String, reason: String)
    /// Creating, writing, syncing or renaming the output failed; nothing was left behind.
    case writeFailed(file: String, reason: String)

    /// The path of the file at fault.
    public var file: String {
        switch self {
        case .unreadable(let f, _), .fileTooShort(let f, _), .headerTooLarge(let f, _, _),
             .headerPastEnd(let f, _, _), .headerNotUTF8(let f), .headerTooComplex(let f, _, _), .headerNotJSON(let f, _),
             .headerNotObject(let f), .invalidMetadata(let f, _, _), .invalidEntry(let f, _, _),
             .unknownDType(let f, _, _), .dataPastEnd(let f, _, _, _),
             .byteCountMismatch(let f, _, _, _, _, _), .overlappingData(let f, _, _),
             .gapBeforeData(let f, _, _, _), .trailingData(let f, _, _),
             .tensorNotFound(let f, _, _, _), .wrongDType(let f, _, _, _),
             .valueOutOfRange(let f, _, _), .invalidValue(let f, _, _), .writeFailed(let f, _):
            return f
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let f, let reason):
            return "safetensors: cannot read \(f): \(reason)"
        case .fileTooShort(let f, let size):
            return "safetensors: \(f) is \(size) bytes, too short for the 8-byte header length"
        case .headerTooLarge(let f, let length, let limit):
            return "safetensors: \(f) declares a \(length)-byte header, above the \(limit)-byte limit (corrupt or not a safetensors file)"
        case .headerPastEnd(let f, let length, let size):
            return "safetensors: \(f) declares a \(length)-byte header but the file has only \(size) bytes (truncated or not a safetensors file)"
        case .headerNotUTF8(let f):
            return "safetensors: \(f): header is not valid UTF-8"
        case .headerTooComplex(let f, let limit, let dataSize):
            return "safetensors: \(f): header holds more than \(limit) JSON items, the budget for a file with \(dataSize) data bytes (corrupt or crafted; real headers need about 12 per tensor)"
        case .headerNotJSON(let f, let reason):
            return "safetensors: \(f): header is not valid JSON: \(reason)"
        case .headerNotObject(let f):
            return "safetensors: \(f): header is not a JSON object"
        case .invalidMetadata(let f, let key, let reason):
            return "safetensors: \(f): __metadata__\(key.map { " key \(quoted($0))" } ?? ""): \(reason)"
        case .invalidEntry(let f, let key, let reason):
            return "safetensors: \(f): tensor \(quoted(key)): \(reason)"
        case .unknownDType(let f, let key, let dtype):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "safetensors: \(f): tensor \(quoted(key)): unknown dtype \(quoted(dtype)) (known: \(known))"
        case .dataPastEnd(let f, let key, let end, let size):
            return "safetensors: \(f): tensor \(quoted(key)): data ends at byte \(end) but the data buffer has only \(size) bytes"
        case .byteCountMismatch(let f, let key, let dtype, let shape, let expected, let actual):
            return "safetensors: \(f): tensor \(quoted(key)): \(dtype.rawValue) \(shape) needs \(expected) bytes but data_offsets span \(actual)"
        case .overlappingData(let f, let key, let previous):
            return "safetensors: \(f): tensor \(quoted(key)): data overlaps tensor \(quoted(previous))"
        case .gapBeforeData(let f, let key, let begin, let expected):
            return "safetensors: \(f): tensor \(quoted(key)): data starts at \(begin) but the previous tensor ends at \(expected) (holes are not allowed)"
        case .trailingData(let f, let used, let size):
            return "safetensors: \(f): tensors cover \(used) of the \(size) data bytes; the rest belongs to no tensor"
        case .tensorNotFound(let f, let name, let nearest, let available):
            let hint = nearest.isEmpty ? "the file holds no tensors"
                : "\(available) tensors; nearest: \(nearest.map(quoted).joined(separator: ", "))"
            return "safetensors: \(f): no tensor \(quoted(name)) (\(hint))"
        case .wrongDType(let f, let key, let dtype, let wanted):
            return "safetensors: \(f): tensor \(quoted(key)) is \(dtype.rawValue); \(wanted)"
        case .valueOutOfRange(let f, let key, let reason):
            return "safetensors: \(f): tensor \(quoted(key)): \(reason)"
        case .invalidValue(let f, let key, let reason):
            return "safetensors: writing \(f): tensor \(quoted(key)): \(reason)"
        case .writeFailed(let f, let reason):
            return "safetensors: writing \(f) failed: \(reason)"
        }
    }
}

/// Names may be empty or hold spaces; quoting keeps them visible in a message.
private func quoted(_ s: String) -> String { "\"\(s)\"" }
