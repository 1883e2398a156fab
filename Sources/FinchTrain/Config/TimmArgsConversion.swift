import Foundation
import Yams
import FinchTensor

/// A timm run's `args.yaml` (the flat `train.py` options timm writes beside its checkpoints) as a
/// Finch config: each option with a Finch key is carried over through `TimmNames`, the others are
/// listed, so nothing is dropped without a word.
public struct TimmArgsConversion {
    /// A timm option that has no Finch key, or a value Finch cannot express.
    public struct Skipped: Equatable, Sendable {
        public let key: String
        public let value: String
        public let reason: String
    }

    /// The Finch config (YAML, with a comment header listing what was left out).
    public let yaml: String
    /// timm options left out, in file order.
    public let skipped: [Skipped]
    /// Keys timm's `train.py` does not have (left out too).
    public let unknown: [String]
    /// Choices made for the user (e.g. `pretrained: true` → a weights path).
    public let notes: [String]
    /// Why the converted config does not load as it is (e.g. no dataset folder given), or nil.
    public let loadProblem: String?

    /// Fewer recognised options than this and the file is not a timm args.yaml (timm writes all ~150).
    static let minimumTimmOptions = 8

    public static func convert(_ text: String, source: String) throws -> TimmArgsConversion {
        func refuse(_ why: String) -> ConfigError { ConfigError(file: source, key: "", message: "is not a timm args.yaml: \(why)") }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw refuse("not valid YAML (\(error))") }
        guard let root, case .mapping(let mapping) = root else {
            throw refuse("expected the flat mapping of train.py options timm writes, found \(root.map(ConfigReader.describe) ?? "nothing")")
        }
        var entries: [(key: String, value: Node)] = []
        for (k, v) in mapping {
            guard let key = k.string else { throw refuse("keys must be strings, found \(ConfigReader.describe(k))") }
            entries.append((key, v))
        }
        let finchSections = KeyNames.shared.sections
        let nested = entries.filter { finchSections.contains($0.key) && { if case .mapping = $0 { return true }; return false }($0.value) }
        if !nested.isEmpty {
            throw ConfigError(file: source, key: "", message: "is a Finch config (sections \(nested.map(\.key).joined(separator: ", "))), not a timm args.yaml; give it to train --config as it is")
        }
        let recognised = entries.filter { TimmNames.isTimmOption($0.key) }.count
        guard entries.contains(where: { $0.key == "model" }), recognised >= minimumTimmOptions else {
            throw refuse("it has \(recognised) of timm's train.py options\(entries.contains(where: { $0.key == "model" }) ? "" : " and no 'model'") (a timm run's args.yaml lists them all: model, opt, sched, lr, epochs, …)")
        }

        let values = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let emaOn = values["model_ema"]?.bool == true
        var set: [(path: String, value: Node)] = []
        var skipped: [Skipped] = [], unknown: [String] = [], notes: [String] = []
        func show(_ n: Node) -> String {
            ((try? Yams.serialize(node: n)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
        }
        for (key, value) in entries {
            if let alias = TimmNames.table[key] {
                // data_dir wins over timm 1.0's positional `data` when both are given.
                if key == "data", values["data_dir"].map({ !TimmNames.isUnset($0) }) == true { continue }
                // timm applies colour jitter only without an AutoAugment policy; Finch refuses both.
                if key == "color_jitter", values["aa"].map({ !TimmNames.isUnset($0) }) == true {
                    skipped.append(Skipped(key: key, value: show(value), reason: "not used with aa, as in timm"))
                    continue
                }
                if alias.finch.hasPrefix("ema."), !emaOn {
                    if !TimmNames.isUnset(value) { skipped.append(Skipped(key: key, value: show(value), reason: "model_ema is off")) }
                    continue
                }
                switch alias.translate(value) {
                case .value(let v): set.append((alias.finch, v))
                case .unset: continue
                case .unsupported(let why): skipped.append(Skipped(key: key, value: show(value), reason: why))
                }
            } else if TimmNames.withoutEquivalent.contains(key) {
                if key == "pretrained", value.bool == true { continue }
                if TimmNames.isOff(key, value) { continue }
                skipped.append(Skipped(key: key, value: show(value), reason: "no Finch equivalent"))
            } else {
                unknown.append(key)
            }
        }
        // timm downloads pretrained weights by model name; Finch reads them from a file.
        if values["pretrained"]?.bool == true, !set.contains(where: { $0.path == "model.pretrained" }),
           let model = values["model"]?.string {
            let file = "Checkpoints/\(model).safetensors"
            set.append(("model.pretrained", Node(file)))
            notes.append("pretrained: true → model.pretrained: \(file) (convert timm's weights there with `finch import`)")
        }

        let yamlBody = try Yams.serialize(node: nest(set))
        var header = ["# Converted from \(source) (timm train.py options) by finch config from-timm, Finch \(FinchVersion.string)."]
        header += notes.map { "# \($0)" }
        if !skipped.isEmpty {
            header.append("# timm options left out:")
            header += skipped.map { "#   \($0.key): \($0.value)  (\($0.reason))" }
        }
        if !unknown.isEmpty { header.append("# not timm train.py options, left out: \(unknown.joined(separator: ", "))") }
        let yaml = header.joined(separator: "\n") + "\n" + yamlBody

        var problem: String? = nil
        do { _ = try TrainConfig.parse(yaml, source: source) } catch { problem = "\(error)" }
        return TimmArgsConversion(yaml: yaml, skipped: skipped, unknown: unknown, notes: notes, loadProblem: problem)
    }

    /// Dotted paths as nested sections, in the order Finch declares its keys.
    static func nest(_ set: [(path: String, value: Node)]) -> Node {
        let order = Dictionary(KeyNames.shared.paths.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        func rank(_ p: String) -> Int {
            order[p] ?? KeyNames.shared.paths.firstIndex(where: { $0.hasPrefix(p + ".") }) ?? Int.max
        }
        let sorted = set.enumerated().sorted { (rank($0.element.path), $0.offset) < (rank($1.element.path), $1.offset) }.map(\.element)
        var root: [(String, Any)] = []
        func insert(_ parts: ArraySlice<String>, _ value: Node, into list: inout [(String, Any)]) {
            guard let head = parts.first else { return }
            if parts.count == 1 {
                // An empty mapping only switches a section on (model_ema): keys already in it stay.
                if let i = list.firstIndex(where: { $0.0 == head }) {
                    if !(list[i].1 is [(String, Any)] && value.mapping?.count == 0) { list[i].1 = value }
                } else { list.append((head, value)) }
                return
            }
            var child: [(String, Any)] = []
            if let i = list.firstIndex(where: { $0.0 == head }), let existing = list[i].1 as? [(String, Any)] {
                child = existing
                insert(parts.dropFirst(), value, into: &child)
                list[i].1 = child
            } else {
                insert(parts.dropFirst(), value, into: &child)
                list.removeAll { $0.0 == head }
                list.append((head, child))
            }
        }
        for (path, value) in sorted { insert(path.split(separator: ".").map(String.init)[...], value, into: &root) }
        func node(_ list: [(String, Any)]) -> Node {
            Node(list.map { k, v in (Node(k), (v as? Node) ?? node((v as? [(String, Any)]) ?? [])) })
        }
        return node(root)
    }
}
