import Foundation
import Yams

/// `--set key.path=value`: an override is applied to the YAML tree before it is read, so it meets
/// the same declarations, checks and did-you-mean errors as the file.
extension TrainConfig {
    /// `a.b.c=value`: the value is read as YAML, so numbers, booleans and lists keep their types.
    static func applyOverride(_ o: String, to root: Node, source: String) throws -> Node {
        guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
            throw ConfigError(file: "--set", key: o, message: "expected key.path=value")
        }
        let keyText = String(o[..<eq])
        let path = keyText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // Sections nest three deep (distill.teacher.image_size); a path of thousands of parts would
        // only recurse the stack away below.
        guard path.count <= 8 else {
            throw ConfigError(file: "--set", key: String(keyText.prefix(60)) + "…", message: "has \(path.count) parts; config keys have at most 8")
        }
        if let bad = path.first(where: { $0.isEmpty || $0.contains(where: { $0.isWhitespace }) }) {
            throw ConfigError(file: "--set", key: keyText, message: bad.isEmpty ? "empty key in the path (expected key.path=value, e.g. optimizer.lr=1e-4)"
                              : "'\(bad)' contains spaces (expected key.path=value, e.g. optimizer.lr=1e-4)")
        }
        let valueText = String(o[o.index(after: eq)...])
        if valueText.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ConfigError(file: "--set", key: keyText, message: "has no value (write \(keyText)=null for the default)")
        }
        let value: Node
        do { value = try Yams.compose(yaml: valueText) ?? Node("null", Tag(.null)) } catch {
            throw ConfigError(file: "--set", key: String(o[..<eq]), message: "value '\(valueText)' is not valid YAML")
        }
        let (target, targetValue) = try resolveOverrideName(path, value: value, keyText: keyText, valueText: valueText)
        func set(_ node: Node, _ keys: ArraySlice<String>) throws -> Node {
            guard let k = keys.first else { return targetValue }
            var pairs: [(Node, Node)] = []
            if case .mapping(let m) = node { pairs = m.map { ($0.key, $0.value) } }
            else if node.null == nil, case .scalar = node {
                throw ConfigError(file: "--set", key: target.joined(separator: "."), message: "'\(k)' is inside a value, not a section")
            }
            if let i = pairs.firstIndex(where: { $0.0.string == k }) {
                pairs[i].1 = try set(pairs[i].1, keys.dropFirst())
            } else {
                pairs.append((Node(k), try set(Node([(Node, Node)]()), keys.dropFirst())))
            }
            return Node(pairs)
        }
        return try set(root, target[...])
    }
}
