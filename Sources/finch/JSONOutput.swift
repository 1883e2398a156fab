import Foundation

/// Pretty, key-sorted JSON written atomically (scripts read these).
func writeJSON(_ object: Any, to path: String) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
}
