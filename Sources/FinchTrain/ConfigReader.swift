import Foundation
import Yams

/// A problem in a config file or override, always naming the key path.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let key: String
    public let message: String

    public init(file: String, key: String, message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String { "\(file): \(key.isEmpty ? "" : "'\(key)': ")\(message)" }
}

/// Reads one YAML mapping against the keys the code asks for. Every read records the resolved
/// value (given or default) so the full config can be written back; keys nobody asked for are
/// reported as unknown with the nearest valid key.
final class ConfigReader {
    let file: String
    let path: String
    private let mapping: [String: Node]
    private var asked: [String] = []
    private(set) var resolved: [(String, Node)] = []

    init(file: String, path: String, node: Node?) throws {
        self.file = file
        self.path = path
        guard let node, case .mapping(let m) = node else {
            if let node, !(node.null != nil) {
                throw ConfigError(file: file, key: path, message: "expected a mapping of keys, found \(Self.describe(node))")
            }
            mapping = [:]
            return
        }
        var dict: [String: Node] = [:]
        for (k, v) in m {
            guard let key = k.string else { throw ConfigError(file: file, key: path, message: "keys must be strings, found \(Self.describe(k))") }
            dict[key] = v
        }
        mapping = dict
    }

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    private func value(_ name: String) -> Node? {
        asked.append(name)
        guard let v = mapping[name], v.null == nil else { return nil }
        return v
    }

    private func typeError(_ name: String, _ expected: String, _ node: Node) -> ConfigError {
        ConfigError(file: file, key: key(name), message: "expected \(expected), found \(Self.describe(node))")
    }

    func string(_ name: String, _ fallback: String) throws -> String {
        guard let v = value(name) else { resolved.append((name, Node(fallback))); return fallback }
        guard case .scalar(let s) = v else { throw typeError(name, "a string", v) }
        resolved.append((name, Node(s.string)))
        return s.string
    }

    func optionalString(_ name: String) throws -> String? {
        guard let v = value(name) else { resolved.append((name, Node("null", Tag(.null)))); return nil }
        guard case .scalar(let s) = v else { throw typeError(name, "a string", v) }
        resolved.append((name, Node(s.string)))
        return s.string
    }

    func choice(_ name: String, _ fallback: String, _ allowed: [String]) throws -> String {
        let s = try string(name, fallback)
        guard allowed.contains(s) else {
            throw ConfigError(file: file, key: key(name), message: "'\(s)' is not one of \(allowed.joined(separator: ", "))"
                              + (nearest(s, allowed).map { " (did you mean '\($0)'?)" } ?? ""))
        }
        return s
    }

    func int(_ name: String, _ fallback: Int, min: Int? = nil) throws -> Int {
        guard let v = value(name) else { resolved.append((name, Node(String(fallback)))); return fallback }
        guard let i = v.int, v.scalar?.string.contains(".") != true else { throw typeError(name, "an integer", v) }
        if let min, i < min { throw ConfigError(file: file, key: key(name), message: "must be ≥ \(min), got \(i)") }
        resolved.append((name, Node(String(i))))
        return i
    }

    func optionalInt(_ name: String, min: Int? = nil) throws -> Int? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try int(name, 0, min: min)
    }

    func double(_ name: String, _ fallback: Double, range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = value(name) else { resolved.append((name, Node(Self.format(fallback)))); return fallback }
        guard let d = Self.number(v) else { throw typeError(name, "a number", v) }
        if let range, !range.contains(d) {
            throw ConfigError(file: file, key: key(name), message: "must be in [\(Self.format(range.lowerBound)), \(Self.format(range.upperBound))], got \(Self.format(d))")
        }
        resolved.append((name, Node(Self.format(d))))
        return d
    }

    func optionalDouble(_ name: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try double(name, 0, range: range)
    }

    func bool(_ name: String, _ fallback: Bool) throws -> Bool {
        guard let v = value(name) else { resolved.append((name, Node(fallback ? "true" : "false"))); return fallback }
        guard let b = v.bool else { throw typeError(name, "true or false", v) }
        resolved.append((name, Node(b ? "true" : "false")))
        return b
    }

    func doubles(_ name: String, _ fallback: [Double], count: Int? = nil) throws -> [Double] {
        guard let v = value(name) else { resolved.append((name, Self.list(fallback.map(Self.format)))); return fallback }
        guard case .sequence(let seq) = v else { throw typeError(name, "a list of numbers", v) }
        let ds = try seq.map { n -> Double in
            guard let d = Self.number(n) else { throw typeError(name, "a list of numbers", v) }
            return d
        }
        if let count, ds.count != count {
            throw ConfigError(file: file, key: key(name), message: "expected \(count) numbers, found \(ds.count)")
        }
        resolved.append((name, Self.list(ds.map(Self.format))))
        return ds
    }

    func optionalDoubles(_ name: String, count: Int? = nil) throws -> [Double]? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try doubles(name, [], count: count)
    }

    func ints(_ name: String, _ fallback: [Int]) throws -> [Int] {
        guard let v = value(name) else { resolved.append((name, Self.list(fallback.map(String.init)))); return fallback }
        guard case .sequence(let seq) = v else { throw typeError(name, "a list of integers", v) }
        let xs = try seq.map { n -> Int in
            guard let i = n.int else { throw typeError(name, "a list of integers", v) }
            return i
        }
        resolved.append((name, Self.list(xs.map(String.init))))
        return xs
    }

    func strings(_ name: String, _ fallback: [String]) throws -> [String] {
        guard let v = value(name) else { resolved.append((name, Self.list(fallback))); return fallback }
        if case .scalar(let s) = v { resolved.append((name, Self.list([s.string]))); return [s.string] }
        guard case .sequence(let seq) = v else { throw typeError(name, "a list of strings", v) }
        let xs = try seq.map { n -> String in
            guard case .scalar(let s) = n else { throw typeError(name, "a list of strings", v) }
            return s.string
        }
        resolved.append((name, Self.list(xs)))
        return xs
    }

    /// A mapping from free-form names (module prefixes) to numbers, e.g. `layer_lr: {conv_stem: 1e-5}`.
    func numberMap(_ name: String) throws -> [(String, Double)] {
        guard let v = value(name) else { resolved.append((name, Node([(Node, Node)]()))); return [] }
        guard case .mapping(let m) = v else { throw typeError(name, "a mapping of names to numbers", v) }
        let pairs = try m.map { k, n -> (String, Double) in
            guard let ks = k.string, let d = Self.number(n) else { throw typeError(name, "a mapping of names to numbers", v) }
            return (ks, d)
        }
        resolved.append((name, Node(pairs.map { (Node($0.0), Node(Self.format($0.1))) })))
        return pairs
    }

    func section<T>(_ name: String, _ body: (ConfigReader) throws -> T) throws -> T {
        asked.append(name)
        let r = try ConfigReader(file: file, path: key(name), node: mapping[name])
        let value = try body(r)
        try r.finish()
        resolved.append((name, r.resolvedNode))
        return value
    }

    func optionalSection<T>(_ name: String, _ body: (ConfigReader) throws -> T) throws -> T? {
        guard let v = mapping[name], v.null == nil else { asked.append(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try section(name, body)
    }

    /// Fails on keys that were never asked for, suggesting the nearest valid one.
    func finish() throws {
        for k in mapping.keys.sorted() where !asked.contains(k) {
            let hint = nearest(k, asked).map { " (did you mean '\($0)'?)" } ?? ""
            throw ConfigError(file: file, key: key(k), message: "unknown key\(hint); valid keys here: \(asked.joined(separator: ", "))")
        }
    }

    var resolvedNode: Node { Node(resolved.map { (Node($0.0), $0.1) }) }

    // MARK: Helpers

    static func number(_ n: Node) -> Double? {
        guard case .scalar(let s) = n else { return nil }
        if let d = Double(s.string.replacingOccurrences(of: "_", with: "")) { return d }
        return n.float.map { Double($0) }
    }

    static func format(_ d: Double) -> String {
        if d == d.rounded() && Swift.abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func list(_ items: [String]) -> Node { Node(items.map { Node($0) }) }

    static func describe(_ n: Node) -> String {
        switch n {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        default: return "a YAML alias"
        }
    }
}

/// Closest candidate by edit distance, if close enough to be a likely typo.
func nearest(_ word: String, _ candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}
