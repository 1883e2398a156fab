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
    /// Full key paths given with a value other than the default (sections included), so a
    /// setting that cannot act in this config is refused rather than ignored.
    private(set) var changed: Set<String> = []
    /// The config file's name without extension, the default of `experiment` (top level only).
    var fileStem: String?

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
        if s.string != fallback { changed.insert(key(name)) }
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

    /// A choice read into its enum, so no later code parses the string again.
    func choice<E: RawRepresentable>(_ name: String, _ fallback: E, _ allowed: [E]) throws -> E where E.RawValue == String {
        let s = try choice(name, fallback.rawValue, allowed.map(\.rawValue))
        guard let e = allowed.first(where: { $0.rawValue == s }) else {
            throw ConfigError(file: file, key: key(name), message: "'\(s)' is not one of the declared choices")
        }
        return e
    }

    /// Integers are bounded on both sides: a config value ends up in allocations, loop counts and
    /// `Int(Double)` conversions, where an absurd size is a hang or a crash instead of a message.
    func int(_ name: String, _ fallback: Int, min: Int? = nil, max: Int? = nil) throws -> Int {
        guard let v = value(name) else { resolved.append((name, Node(String(fallback)))); return fallback }
        guard let i = v.int, v.scalar?.string.contains(".") != true else { throw typeError(name, "an integer", v) }
        if let min, i < min { throw ConfigError(file: file, key: key(name), message: "must be ≥ \(min), got \(i)") }
        if let max, i > max { throw ConfigError(file: file, key: key(name), message: "must be ≤ \(max), got \(i)") }
        if i != fallback { changed.insert(key(name)) }
        resolved.append((name, Node(String(i))))
        return i
    }

    func optionalInt(_ name: String, min: Int? = nil, max: Int? = nil) throws -> Int? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try int(name, 0, min: min, max: max)
    }

    /// Every number must be finite (YAML spells NaN and infinity `.nan` and `.inf`) and inside `range`.
    func double(_ name: String, _ fallback: Double, range: NumberRange? = nil) throws -> Double {
        guard let v = value(name) else { resolved.append((name, Node(Self.format(fallback)))); return fallback }
        guard let d = Self.number(v) else { throw typeError(name, "a number", v) }
        try check(d, name, range)
        if d != fallback { changed.insert(key(name)) }
        resolved.append((name, Node(Self.format(d))))
        return d
    }

    func double(_ name: String, _ fallback: Double, range: ClosedRange<Double>) throws -> Double {
        try double(name, fallback, range: NumberRange(range))
    }

    func optionalDouble(_ name: String, range: NumberRange? = nil) throws -> Double? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try double(name, 0, range: range)
    }

    func optionalDouble(_ name: String, range: ClosedRange<Double>) throws -> Double? {
        try optionalDouble(name, range: NumberRange(range))
    }

    private func check(_ d: Double, _ name: String, _ range: NumberRange?, item: String = "") throws {
        guard d.isFinite else {
            throw ConfigError(file: file, key: key(name), message: "\(item)must be a finite number, got \(Self.format(d))")
        }
        if let range, !range.contains(d) {
            throw ConfigError(file: file, key: key(name), message: "\(item)must be \(range), got \(Self.format(d))")
        }
    }

    func bool(_ name: String, _ fallback: Bool) throws -> Bool {
        guard let v = value(name) else { resolved.append((name, Node(fallback ? "true" : "false"))); return fallback }
        guard let b = v.bool else { throw typeError(name, "true or false", v) }
        if b != fallback { changed.insert(key(name)) }
        resolved.append((name, Node(b ? "true" : "false")))
        return b
    }

    /// A list of numbers, each finite and inside `each`; `ordered` asks for lo ≤ hi (a `[lo, hi]` pair).
    func doubles(_ name: String, _ fallback: [Double], count: Int? = nil, each: NumberRange? = nil,
                 ordered: Bool = false) throws -> [Double] {
        guard let v = value(name) else { resolved.append((name, Self.list(fallback.map(Self.format)))); return fallback }
        guard case .sequence(let seq) = v else { throw typeError(name, "a list of numbers", v) }
        let ds = try seq.map { n -> Double in
            guard let d = Self.number(n) else { throw typeError(name, "a list of numbers", v) }
            return d
        }
        if let count, ds.count != count {
            throw ConfigError(file: file, key: key(name), message: "expected \(count) numbers, found \(ds.count)")
        }
        for (i, d) in ds.enumerated() { try check(d, name, each, item: "item \(i + 1) ") }
        if ordered {
            for i in 1..<Swift.max(1, ds.count) where ds[i - 1] > ds[i] {
                throw ConfigError(file: file, key: key(name),
                                  message: "lower bound \(Self.format(ds[i - 1])) is above upper \(Self.format(ds[i]))")
            }
        }
        if ds != fallback { changed.insert(key(name)) }
        resolved.append((name, Self.list(ds.map(Self.format))))
        return ds
    }

    func optionalDoubles(_ name: String, count: Int? = nil, each: NumberRange? = nil, ordered: Bool = false) throws -> [Double]? {
        guard mapping[name].map({ $0.null == nil }) ?? false else { _ = value(name); resolved.append((name, Node("null", Tag(.null)))); return nil }
        return try doubles(name, [], count: count, each: each, ordered: ordered)
    }

    func ints(_ name: String, _ fallback: [Int], min: Int? = nil, max: Int? = nil) throws -> [Int] {
        guard let v = value(name) else { resolved.append((name, Self.list(fallback.map(String.init)))); return fallback }
        guard case .sequence(let seq) = v else { throw typeError(name, "a list of integers", v) }
        let xs = try seq.map { n -> Int in
            guard let i = n.int, n.scalar?.string.contains(".") != true else { throw typeError(name, "a list of integers", v) }
            if let min, i < min { throw ConfigError(file: file, key: key(name), message: "items must be ≥ \(min), got \(i)") }
            if let max, i > max { throw ConfigError(file: file, key: key(name), message: "items must be ≤ \(max), got \(i)") }
            return i
        }
        if xs != fallback { changed.insert(key(name)) }
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
    /// `whole` asks for integers (counts).
    func numberMap(_ name: String, each: NumberRange? = nil, whole: Bool = false) throws -> [(String, Double)] {
        guard let v = value(name) else { resolved.append((name, Node([(Node, Node)]()))); return [] }
        guard case .mapping(let m) = v else { throw typeError(name, "a mapping of names to numbers", v) }
        let pairs = try m.map { k, n -> (String, Double) in
            guard let ks = k.string, let d = Self.number(n) else { throw typeError(name, "a mapping of names to numbers", v) }
            try check(d, name, each, item: "'\(ks)' ")
            if whole && d != d.rounded() {
                throw ConfigError(file: file, key: key(name), message: "'\(ks)' must be a whole number, got \(Self.format(d))")
            }
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
        changed.formUnion(r.changed)
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

/// Where a config number may lie: each end closed or open, either end unbounded. Its description
/// reads as the rule a user has to meet ("in (0, 1]", "> 0").
struct NumberRange: CustomStringConvertible {
    var lower: Double = -.infinity, upper: Double = .infinity
    var lowerOpen = false, upperOpen = false

    init(_ r: ClosedRange<Double>) { lower = r.lowerBound; upper = r.upperBound }
    init(lower: Double = -.infinity, upper: Double = .infinity, lowerOpen: Bool = false, upperOpen: Bool = false) {
        (self.lower, self.upper, self.lowerOpen, self.upperOpen) = (lower, upper, lowerOpen, upperOpen)
    }

    /// [a, b]
    static func closed(_ a: Double, _ b: Double) -> NumberRange { NumberRange(lower: a, upper: b) }
    /// (a, b]
    static func aboveUpTo(_ a: Double, _ b: Double) -> NumberRange { NumberRange(lower: a, upper: b, lowerOpen: true) }
    /// [a, b)
    static func fromBelow(_ a: Double, _ b: Double) -> NumberRange { NumberRange(lower: a, upper: b, upperOpen: true) }
    /// (a, b)
    static func open(_ a: Double, _ b: Double) -> NumberRange { NumberRange(lower: a, upper: b, lowerOpen: true, upperOpen: true) }
    /// > a
    static func above(_ a: Double) -> NumberRange { NumberRange(lower: a, lowerOpen: true) }
    /// ≥ a
    static func atLeast(_ a: Double) -> NumberRange { NumberRange(lower: a) }

    func contains(_ d: Double) -> Bool {
        (lowerOpen ? d > lower : d >= lower) && (upperOpen ? d < upper : d <= upper)
    }

    var description: String {
        let f = ConfigReader.format
        switch (lower.isFinite, upper.isFinite) {
        case (true, true): return "in \(lowerOpen ? "(" : "[")\(f(lower)), \(f(upper))\(upperOpen ? ")" : "]")"
        case (true, false): return "\(lowerOpen ? ">" : "≥") \(f(lower))"
        case (false, true): return "\(upperOpen ? "<" : "≤") \(f(upper))"
        case (false, false): return "a finite number"
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
