import Foundation

/// TFRecord framing, the container of TensorBoard event files: per record the payload length as
/// a little-endian UInt64, the masked CRC-32C of those 8 bytes, the payload, and the masked
/// CRC-32C of the payload (both CRCs little-endian UInt32).
enum TFRecordFraming {
    static func frame(_ payload: Data) -> Data {
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        var out = Data(capacity: payload.count + 16)
        out.append(lengthBytes)
        appendLittleEndian(CRC32C.masked(CRC32C.checksum(lengthBytes)), to: &out)
        out.append(payload)
        appendLittleEndian(CRC32C.masked(CRC32C.checksum(payload)), to: &out)
        return out
    }

    private static func appendLittleEndian(_ v: UInt32, to out: inout Data) {
        var le = v.littleEndian
        withUnsafeBytes(of: &le) { out.append(contentsOf: $0) }
    }
}
