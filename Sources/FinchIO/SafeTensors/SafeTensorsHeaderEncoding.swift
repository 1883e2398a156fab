// The header JSON is produced by hand rather than by JSONSerialization so that key order is
// fixed (metadata first, then tensors in data order, as the reference writes it) and the bytes
// of a file depend only on its contents.

/// `text` as a JSON string literal. Non-ASCII stays raw UTF-8, which JSON allows and keeps the
/// header readable; only quotes, backslashes and control characters are escaped.
func jsonStringLiteral(_ text: String) -> String {
    var out = "\""
    out.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
    return out
}

/// One tensor as laid out in the file being written.
struct PlannedEntry {
    let name: String
    let dtype: SafeTensorsDType
    let shape: [Int]
    let begin: Int
    let end: Int
}

/// The complete header bytes, space-padded so that the data buffer starts on an 8-byte boundary
/// (the reference pads the same way; aligned data lets readers use it in place).
func encodeHeader(_ entries: [PlannedEntry], metadata: [String: String]) -> [UInt8] {
    var parts: [String] = []
    parts.reserveCapacity(entries.count + 1)
    if !metadata.isEmpty {
        let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let fields = keys.map { "\(jsonStringLiteral($0)):\(jsonStringLiteral(metadata[$0]!))" }
        parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
    }
    for e in entries {
        let shape = e.shape.map(String.init).joined(separator: ",")
        parts.append("\(jsonStringLiteral(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(e.begin),\(e.end)]}")
    }
    var bytes = Array("{\(parts.joined(separator: ","))}".utf8)
    let padding = (8 - bytes.count % 8) % 8
    bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
    return bytes
}
