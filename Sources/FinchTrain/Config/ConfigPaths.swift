import Foundation
import Yams

/// Where a relative path in a config points. A path written in the config file is looked up
/// beside the config file first, then in the current folder, so a config next to its data runs
/// from any folder and the repository's configs (written relative to its root) keep running from
/// the root. An input found in neither place is an error naming both paths tried; an output
/// found in neither is created beside the config. Defaults and `--set` values, which no file
/// wrote, resolve against the current folder. Absolute paths are used as they are.
extension TrainConfig {
    /// The keys that hold file or folder paths, and whether each names something to read.
    public static let pathKeys: [(key: String, isInput: Bool)] = [
        ("data.root", true), ("data.train_list", true), ("data.val_list", true), ("model.pretrained", true),
        ("distill.teacher.checkpoint", true), ("output", false), ("checkpoints", false),
    ]

    /// The places `value` (the value of `key`) may be, in the order they are tried; `base` is the
    /// current folder.
    public func pathCandidates(_ key: String, _ value: String, base: URL) -> [URL] {
        if value.hasPrefix("/") { return [URL(fileURLWithPath: value)] }
        let here = base.appendingPathComponent(value).standardizedFileURL
        guard let dir = configDirectory, pathsFromFile.contains(key) else { return [here] }
        let beside = dir.appendingPathComponent(value).standardizedFileURL
        return beside.path == here.path ? [beside] : [beside, here]
    }

    /// The first candidate that exists, else the first (beside the config for a path the file
    /// wrote): where an output is created and where a missing input is reported.
    public func resolvePath(_ key: String, _ value: String, base: URL) -> URL {
        let c = pathCandidates(key, value, base: base)
        return c.first { FileManager.default.fileExists(atPath: $0.path) } ?? c[0]
    }

    /// An input path that must exist. With two places to look, a miss names both (the reader's
    /// own error would name only one); with one, the reader reports it as before.
    public func resolveInput(_ key: String, _ value: String, base: URL) throws -> URL {
        let c = pathCandidates(key, value, base: base)
        if let found = c.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        if c.count > 1 {
            throw ConfigError(file: source, key: key, message: "'\(value)' not found: tried \(c[0].path) (beside the config) and \(c[1].path) (the current folder)")
        }
        return c[0]
    }

    /// Path keys whose value is the one the config file wrote (not a default, not a `--set`).
    static func pathsWritten(in file: Node, resolved: TrainConfig) -> Set<String> {
        var out: Set<String> = []
        for (key, _) in pathKeys {
            var node: Node? = file
            for part in key.split(separator: ".") { node = node?.mapping?[Node(String(part))] }
            if let written = node?.string, !written.isEmpty, resolved.pathValue(key) == written { out.insert(key) }
        }
        return out
    }

    /// The current value of a path key.
    func pathValue(_ key: String) -> String? {
        switch key {
        case "data.root": return data.root
        case "data.train_list": return data.trainList
        case "data.val_list": return data.valList
        case "model.pretrained": return model.pretrained
        case "distill.teacher.checkpoint": return distill?.teacher.checkpoint
        case "output": return outputRoot
        case "checkpoints": return checkpointRoot
        default: return nil
        }
    }
}
