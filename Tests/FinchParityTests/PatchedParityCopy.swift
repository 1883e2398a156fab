import XCTest
import Foundation

/// A copy of a safetensors file with some F64 tensors rewritten in place (same sizes).
func patchedParityCopy(of url: URL, edits: [String: ([Double]) -> [Double]]) throws -> URL {
    var bytes = try Data(contentsOf: url)
    let headerLength = bytes.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
    let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
    for (key, edit) in edits {
        let entry = try XCTUnwrap(header[key] as? [String: Any], "no \(key)")
        XCTAssertEqual(entry["dtype"] as? String, "F64")
        let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
        let range = (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1])
        let values = bytes.subdata(in: range).withUnsafeBytes { p in
            (0..<(range.count / 8)).map { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        }
        let edited = edit(values)
        XCTAssertEqual(edited.count, values.count)
        var out = Data()
        for v in edited { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        bytes.replaceSubrange(range, with: out)
    }
    let copy = FileManager.default.temporaryDirectory.appendingPathComponent("parity-\(UUID().uuidString)-" + url.lastPathComponent)
    try bytes.write(to: copy)
    return copy
}
