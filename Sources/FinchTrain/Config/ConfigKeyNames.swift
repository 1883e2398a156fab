import Foundation
import Yams

/// `--set` by a short name: a single word that is not a top-level key is read as timm's option
/// name (`opt=adamw`, `smoothing=0.1`, `drop_path=0.1`) or as a key's own name when one section
/// alone has it (`lr=1e-3` is `optimizer.lr`). Anything else is refused with the nearest key
/// from every section, so a typo in a short name still points at the full path.
extension TrainConfig {
    /// YAML's null as the parser resolves it (the reader's "not given").
    static let nullNode: Node = (try? Yams.compose(yaml: "null")) ?? Node("~")

    static func resolveOverrideName(_ path: [String], value: Node, keyText: String, valueText: String) throws -> ([String], Node) {
        guard path.count == 1, let name = path.first else { return (path, value) }
        let names = KeyNames.shared
        let isSection = names.sections.contains(name)
        if names.topLevelKeys.contains(name) { return (path, value) }
        // `model: resnet18` and `mixup: 0.8` are timm's scalars; a mapping or null is the section.
        let scalarForSection: Bool = {
            if value.null != nil { return false }
            if case .mapping = value { return false }
            return true
        }()
        if isSection && !scalarForSection { return (path, value) }
        if let alias = TimmNames.alias(name) {
            switch alias.translate(value) {
            case .value(let v): return (alias.finch.split(separator: ".").map(String.init), v)
            case .unset: return (alias.finch.split(separator: ".").map(String.init), Self.nullNode)
            case .unsupported(let why):
                throw ConfigError(file: "--set", key: keyText, message: "timm's \(alias.timm) '\(valueText)' has no Finch equivalent (\(why))")
            }
        }
        if isSection { return (path, value) }
        let owners = names.leafPaths[name] ?? []
        if owners.count == 1 { return (owners[0].split(separator: ".").map(String.init), value) }
        if owners.count > 1 {
            throw ConfigError(file: "--set", key: keyText, message: "is a key in several sections: \(owners.joined(separator: ", ")); write the full path")
        }
        let hint = names.nearestPath(name).map { " (did you mean '\($0)'?)" } ?? ""
        throw ConfigError(file: "--set", key: keyText, message: "unknown key\(hint); keys are written section.key, e.g. optimizer.lr")
    }
}

/// Every declared key path, grouped the ways a short name can be looked up.
struct KeyNames {
    /// Full paths of plain keys (`optimizer.lr`), in declaration order.
    let paths: [String]
    /// Key name → the full paths that end in it.
    let leafPaths: [String: [String]]
    let topLevelKeys: Set<String>
    let sections: Set<String>

    static let shared = KeyNames(paths: TrainConfig.declaredKeys.map(\.path))

    init(paths: [String]) {
        self.paths = paths
        var leaves: [String: [String]] = [:], sections: Set<String> = [], top: Set<String> = []
        for p in paths {
            let parts = p.split(separator: ".").map(String.init)
            leaves[parts.last ?? p, default: []].append(p)
            if parts.count == 1 { top.insert(p) }
            for i in 1..<parts.count { sections.insert(parts[..<i].joined(separator: ".")) }
        }
        leafPaths = leaves
        topLevelKeys = top
        self.sections = sections
    }

    /// The full path nearest to `word` by the key's own name, its full path or a timm alias.
    func nearestPath(_ word: String) -> String? {
        // Edit distance is quadratic: a pasted megabyte is no typo worth a suggestion.
        guard word.count <= 64 else { return nil }
        var byName: [String: String] = [:]
        for p in paths { byName[p] = p }
        for (leaf, owners) in leafPaths where owners.count == 1 { byName[leaf] = owners[0] }
        for (timm, alias) in TimmNames.table where byName[timm] == nil { byName[timm] = alias.finch }
        return nearest(word, byName.keys.sorted()).flatMap { byName[$0] }
    }
}
