import Foundation

/// Core ML's weight file (`weights/weight.bin`, MIL blob storage version 2): a 64-byte header
/// (entry count, version), then per tensor a 64-byte metadata record (sentinel 0xDEADBEEF, data
/// type, byte size, offset of the data) followed by the data, every record starting on a 64-byte
/// boundary. A `const` op names a tensor by its metadata record's offset.
struct MILBlobWriter {
    enum DataType: UInt32 {
        case float16 = 1
        case float32 = 2
    }

    static let alignment = 64
    static let sentinel: UInt32 = 0xDEAD_BEEF
    private(set) var data = Data(count: MILBlobWriter.alignment)
    private(set) var count = 0

    /// Appends `values` (already in the storage type's bytes) and returns its metadata offset.
    mutating func append(_ bytes: Data, type: DataType) -> UInt64 {
        let metadataOffset = data.count
        let dataOffset = metadataOffset + Self.alignment
        var record = Data(count: Self.alignment)
        record.withUnsafeMutableBytes { p in
            p.storeBytes(of: Self.sentinel.littleEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: type.rawValue.littleEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: UInt64(bytes.count).littleEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: UInt64(dataOffset).littleEndian, toByteOffset: 16, as: UInt64.self)
        }
        data.append(record)
        data.append(bytes)
        let padding = (Self.alignment - data.count % Self.alignment) % Self.alignment
        data.append(Data(count: padding))
        count += 1
        data.withUnsafeMutableBytes { p in
            p.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: UInt32(2).littleEndian, toByteOffset: 4, as: UInt32.self)
        }
        return UInt64(metadataOffset)
    }

    mutating func append(_ values: [Float], type: DataType) -> UInt64 {
        switch type {
        case .float32:
            return append(values.map { $0.bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }, type: type)
        case .float16:
            return append(values.map { float16Bits($0).littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }, type: type)
        }
    }
}
