import Foundation
import FinchTensor

/// A tensor to store and the element type to store it as.
public enum SafeTensorsValue {
    case float32(Tensor)
    /// Narrowed on write, round to nearest even; overflow becomes ±infinity.
    case float16(Tensor)
    /// Narrowed on write, round to nearest even.
    case bfloat16(Tensor)
    /// Exact integers, e.g. BatchNorm's `num_batches_tracked`, which PyTorch keeps as int64.
    case int64([Int64], shape: [Int])

    public var dtype: SafeTensorsDType {
        switch self {
        case .float32: return .f32
        case .float16: return .f16
        case .bfloat16: return .bf16
        case .int64: return .i64
        }
    }

    public var shape: [Int] {
        switch self {
        case .float32(let t), .float16(let t), .bfloat16(let t): return t.shape
        case .int64(_, let shape): return shape
        }
    }
}

/// Writes `entries` and `metadata` as a safetensors file at `url`, atomically: the file is
/// assembled under a temporary name beside `url` and renamed over it only once complete.
///
/// Data is ordered by element size (widest first), then by name, and the header lists tensors
/// in that order after `__metadata__`; this is the reference writer's layout, and it leaves every
/// tensor naturally aligned. Entry order in `entries` therefore does not matter. Empty metadata
/// is omitted from the header, as the reference does.
public func writeSafeTensors(_ entries: [(name: String, value: SafeTensorsValue)],
                             metadata: [String: String] = [:], to url: URL) throws {
    let path = url.path
    var seen = Set<String>()
    for (name, value) in entries {
        if name == "__metadata__" {
            throw SafeTensorsError.invalidValue(file: path, key: name, reason: "the name is reserved for metadata")
        }
        if !seen.insert(name).inserted {
            throw SafeTensorsError.invalidValue(file: path, key: name, reason: "the name appears more than once")
        }
        if case .int64(let values, let shape) = value {
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw SafeTensorsError.invalidValue(file: path, key: name, reason: "shape \(shape) has a negative dimension")
            }
            var product = 1
            for d in shape where d != 0 {
                let (p, overflow) = product.multipliedReportingOverflow(by: d)
                if overflow {
                    throw SafeTensorsError.invalidValue(file: path, key: name, reason: "shape \(shape) is too large")
                }
                product = p
            }
            let count = shape.contains(0) ? 0 : product
            guard count == values.count else {
                throw SafeTensorsError.invalidValue(file: path, key: name,
                                                    reason: "\(values.count) values do not fill shape \(shape)")
            }
        }
    }

    let ordered = entries.sorted {
        $0.value.dtype.size != $1.value.dtype.size ? $0.value.dtype.size > $1.value.dtype.size
            : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
    }
    var planned: [PlannedEntry] = []
    planned.reserveCapacity(ordered.count)
    var offset = 0
    for (name, value) in ordered {
        let shape = value.shape
        let bytes = Shape.count(shape) * value.dtype.size
        planned.append(PlannedEntry(name: name, dtype: value.dtype, shape: shape, begin: offset, end: offset + bytes))
        offset += bytes
    }
    let header = encodeHeader(planned, metadata: metadata)
    guard header.count <= SafeTensorsHeader.maxLength else {
        throw SafeTensorsError.invalidValue(file: path, key: "__metadata__",
                                            reason: "the header would be \(header.count) bytes, above the \(SafeTensorsHeader.maxLength)-byte limit readers enforce")
    }

    try AtomicFileOutput.write(to: path) { out in
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try out.write($0) }
        try header.withUnsafeBytes { try out.write($0) }
        for (_, value) in ordered { try writeData(value, to: out) }
    }
}

/// Convenience for a name → tensor map stored in one floating dtype (F32, F16 or BF16).
public func writeSafeTensors(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                             as dtype: SafeTensorsDType = .f32, to url: URL) throws {
    let entries: [(name: String, value: SafeTensorsValue)] = try tensors.map { name, tensor in
        switch dtype {
        case .f32: return (name, .float32(tensor))
        case .f16: return (name, .float16(tensor))
        case .bf16: return (name, .bfloat16(tensor))
        default:
            throw SafeTensorsError.invalidValue(file: url.path, key: name,
                                                reason: "tensors can be written as F32, F16 or BF16, not \(dtype.rawValue)")
        }
    }
    try writeSafeTensors(entries, metadata: metadata, to: url)
}

private func writeData(_ value: SafeTensorsValue, to out: AtomicFileOutput) throws {
    switch value {
    case .float32(let tensor):
        try tensor.withContiguousBuffer { source in
            #if _endian(little)
            try out.write(UnsafeRawBufferPointer(source))
            #else
            try out.writeEncoded(count: source.count, elementSize: 4) { dst, range in
                for i in range { dst.storeBytes(of: source[i].bitPattern.littleEndian, toByteOffset: (i - range.lowerBound) * 4, as: UInt32.self) }
            }
            #endif
        }
    case .float16(let tensor):
        try tensor.withContiguousBuffer { source in
            try out.writeEncoded(count: source.count, elementSize: 2) { dst, range in
                for i in range {
                    dst.storeBytes(of: float16Bits(source[i]).littleEndian, toByteOffset: (i - range.lowerBound) * 2, as: UInt16.self)
                }
            }
        }
    case .bfloat16(let tensor):
        try tensor.withContiguousBuffer { source in
            try out.writeEncoded(count: source.count, elementSize: 2) { dst, range in
                for i in range {
                    dst.storeBytes(of: bfloat16Bits(source[i]).littleEndian, toByteOffset: (i - range.lowerBound) * 2, as: UInt16.self)
                }
            }
        }
    case .int64(let values, _):
        #if _endian(little)
        try values.withUnsafeBytes { try out.write($0) }
        #else
        try out.writeEncoded(count: values.count, elementSize: 8) { dst, range in
            for i in range { dst.storeBytes(of: values[i].littleEndian, toByteOffset: (i - range.lowerBound) * 8, as: Int64.self) }
        }
        #endif
    }
}
