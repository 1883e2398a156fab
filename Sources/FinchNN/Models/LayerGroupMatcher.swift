/// timm's `group_matcher` / `group_with_matcher`: assigns each parameter a layer id from the
/// architecture's own grouping (stem first, each block, head last), used by layer-wise lr decay.
/// Each architecture declares its rules next to its layers (`ModelFamily.layerGroups`).
public struct LayerGroupMatcher: Sendable {
    /// One pattern of a group: matched at the start of the name (Python's `re.match`); numbers
    /// captured by the pattern order the layers; `mergeWithPrevious` is timm's MATCH_PREV_GROUP.
    /// `@unchecked`: `Regex<AnyRegexOutput>` is not marked Sendable only because its captures are
    /// untyped; the regex is immutable once built and matching it from several threads is safe.
    public struct Rule: @unchecked Sendable {
        public let group: Int
        public let pattern: String
        public let mergeWithPrevious: Bool
        /// Compiled once, when the rule is made, so a bad pattern is an error there and matching cannot fail.
        let regex: Regex<AnyRegexOutput>

        /// A rule from a pattern string (Swift regex syntax, which covers timm's patterns).
        public init(group: Int, _ pattern: String, mergeWithPrevious: Bool = false) throws {
            do { regex = try Regex(pattern) } catch { throw LayerGroupMatcherError(pattern: pattern, reason: "\(error)") }
            self.group = group
            self.pattern = pattern
            self.mergeWithPrevious = mergeWithPrevious
        }

        /// A rule from a regex literal, checked by the compiler; `pattern` is its text, for display.
        public init<Output>(group: Int, _ regex: Regex<Output>, _ pattern: String, mergeWithPrevious: Bool = false) {
            self.regex = Regex(regex)
            self.group = group
            self.pattern = pattern
            self.mergeWithPrevious = mergeWithPrevious
        }
    }

    public let rules: [Rule]
    public init(_ rules: [Rule]) { self.rules = rules }

    private static let previousMarker: Double = 99999

    /// Layer id per parameter name, and the number of layers. Unmatched names (heads) sort last.
    public func layerIds(_ names: [String]) -> (ids: [String: Int], count: Int) {
        func key(_ name: String) -> [Double] {
            for rule in rules {
                guard let m = try? rule.regex.prefixMatch(in: name) else { continue }
                var k: [Double] = [Double(rule.group)]
                for i in 1..<m.output.count {
                    if let s = m.output[i].substring, let v = Double(s) { k.append(v) }
                }
                if rule.mergeWithPrevious { k.append(Self.previousMarker) }
                return k
            }
            return [.infinity]
        }
        var groups: [[Double]: [String]] = [:]
        for n in names { groups[key(n), default: []].append(n) }
        let ordered = groups.keys.sorted { a, b in
            for (x, y) in zip(a, b) where x != y { return x < y }
            return a.count < b.count
        }
        var ids: [String: Int] = [:]
        var lid = -1
        for k in ordered {
            if lid < 0 || k.last != Self.previousMarker { lid += 1 }
            for n in groups[k]! { ids[n] = lid }
        }
        return (ids, lid + 1)
    }
}

/// A layer-grouping pattern that is not a valid regular expression.
public struct LayerGroupMatcherError: Error, CustomStringConvertible {
    public let pattern: String
    public let reason: String
    public var description: String { "layer grouping pattern '\(pattern)' is not a valid regular expression: \(reason)" }
}

extension LayerGroupMatcher {
    /// The fine-grained (per block) matcher of the registered model `modelName`, as its
    /// architecture declares it; nil for names outside the zoo.
    public static func forModel(_ modelName: String) -> LayerGroupMatcher? {
        ModelRegistry.groupMatcher(for: modelName)
    }
}
