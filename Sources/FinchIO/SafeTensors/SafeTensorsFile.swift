import Foundation
import FinchTensor

/// A tensor's type and shape as the header declares them.
public struct SafeTensorsInfo: Equatable, Sendable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Bytes the tensor occupies in the file.
    public let byteCount: Int
}

/// A safetensors file opened for reading.
///
/// Opening maps the file read-only and validates the whole header, so every later accessor can
/// only fail for reasons of its own (name not found, dtype not fitting). Tensors are copied out
/// of the mapping on request; the mapping lives as long as any copy of this value.
public struct SafeTensorsFile: Sendable {
    /// The path as given, used in every error message.
    public let path: String
    /// The free-form string map stored under `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Tensor names sorted by their UTF-8 bytes, so the order does not depend on the writer.
    public let names: [String]

    private let mapping: MappedFile
    private let header: SafeTensorsHeader

    public init(contentsOf url: URL) throws {
        path = url.path
        do { mapping = try MappedFile(path: path, what: "safetensors file") } catch let e as InputFileError {
            throw SafeTensorsError.unreadable(file: path, reason: inputFileReason(e))
        }
        header = try SafeTensorsHeader(file: mapping, path: path)
        metadata = header.metadata
        names = header.entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The same validation over bytes in memory (a copy is kept); `name` stands for the path in messages.
    public init(bytes: Data, name: String) throws {
        path = name
        mapping = bytes.withUnsafeBytes { MappedFile(copying: $0) }
        header = try SafeTensorsHeader(file: mapping, path: path)
        metadata = header.metadata
        names = header.entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    public var count: Int { names.count }

    public func contains(_ name: String) -> Bool { header.entries[name] != nil }

    public func info(_ name: String) -> SafeTensorsInfo? {
        header.entries[name].map { SafeTensorsInfo(dtype: $0.dtype, shape: $0.shape, byteCount: $0.end - $0.begin) }
    }

    /// A floating-point tensor as Float32: F16, BF16 and F8 widen exactly, F64 rounds to nearest.
    /// Integer and BOOL tensors throw `wrongDType`, because turning a count or an index into a
    /// float silently is more often a mistake than intended; use `convertedTensor` or `int64s`.
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try lookUp(name)
        guard entry.dtype.isFloatingPoint else {
            throw SafeTensorsError.wrongDType(file: path, key: name, dtype: entry.dtype,
                                              wanted: "tensor(_:) reads floating-point tensors only; use int64s(_:) or convertedTensor(_:)")
        }
        return decodedTensor(entry)
    }

    /// Any tensor as Float32, integers and BOOL included (integers beyond 2^24 lose precision).
    public func convertedTensor(_ name: String) throws -> Tensor {
        decodedTensor(try lookUp(name))
    }

    /// The elements of an integer or BOOL tensor, in row-major order, exactly.
    /// Use `info(_:)` for the shape. Throws for floating dtypes and for U64 values above Int64.max.
    public func int64s(_ name: String) throws -> [Int64] {
        let entry = try lookUp(name)
        guard entry.dtype.isInteger else {
            throw SafeTensorsError.wrongDType(file: path, key: name, dtype: entry.dtype,
                                              wanted: "int64s(_:) reads integer tensors only; use tensor(_:)")
        }
        let decoded = withExtendedLifetime(mapping) { decodeIntegers(bytes(entry), dtype: entry.dtype, count: entry.count) }
        switch decoded {
        case .success(let values):
            return values
        case .failure(let overflow):
            throw SafeTensorsError.valueOutOfRange(file: path, key: name,
                                                   reason: "element \(overflow.index) is \(overflow.value), above Int64.max")
        }
    }

    /// The tensor's bytes exactly as stored (little-endian, row-major).
    public func rawBytes(_ name: String) throws -> Data {
        let entry = try lookUp(name)
        return withExtendedLifetime(mapping) {
            let raw = bytes(entry)
            return raw.isEmpty ? Data() : Data(bytes: raw.baseAddress!, count: raw.count)
        }
    }

    // MARK: Internals

    private func lookUp(_ name: String) throws -> SafeTensorsEntry {
        if let entry = header.entries[name] { return entry }
        throw SafeTensorsError.tensorNotFound(file: path, name: name, nearest: nearestNames(to: name, in: names),
                                              available: names.count)
    }

    private func bytes(_ entry: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        mapping.bytes((header.dataStart + entry.begin)..<(header.dataStart + entry.end))
    }

    private func decodedTensor(_ entry: SafeTensorsEntry) -> Tensor {
        let out = Tensor(uninitializedShape: entry.shape)
        withExtendedLifetime(mapping) {
            decodeFloats(bytes(entry), dtype: entry.dtype, count: entry.count, into: out.basePointer)
        }
        return out
    }
}
