import Foundation

public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// `root/<class>/*.{jpg,jpeg,png}` (case-insensitive) as torchvision's ImageFolder: classes are
/// the sorted folder names, samples sorted paths within each class; hidden entries are skipped.
public struct ImageFolder: Sendable {
    public let root: URL
    public let classes: [String]
    public private(set) var samples: [(url: URL, label: Int)]
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    public init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw DatasetError(path: root.path, reason: "dataset folder not found")
        }
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: root.path) } catch {
            throw DatasetError(path: root.path, reason: "cannot read the folder (\(error.localizedDescription))")
        }
        let classes = entries.filter { !$0.hasPrefix(".") }.filter { n in
            var d: ObjCBool = false
            return fm.fileExists(atPath: root.appendingPathComponent(n).path, isDirectory: &d) && d.boolValue
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !classes.isEmpty else { throw DatasetError(path: root.path, reason: "no class folders (expected root/<class>/<image>)") }
        var samples: [(URL, Int)] = []
        for (label, c) in classes.enumerated() {
            let dir = root.appendingPathComponent(c)
            let files = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { !$0.hasPrefix(".") && Self.extensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            guard !files.isEmpty else { throw DatasetError(path: dir.path, reason: "class folder '\(c)' has no .jpg/.jpeg/.png images") }
            samples += files.map { (dir.appendingPathComponent($0), label) }
        }
        self.classes = classes
        self.samples = samples
    }

    init(root: URL, classes: [String], samples: [(url: URL, label: Int)]) {
        self.root = root
        self.classes = classes
        self.samples = samples
    }

    public var count: Int { samples.count }
    public var labels: [Int] { samples.map(\.label) }
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classes.count)
        for s in samples { c[s.label] += 1 }
        return c
    }

    /// Per class: shuffle with the seed, the first round(fraction·n) go to validation.
    public func stratifiedSplit(valFraction: Double, seed: UInt64) -> (train: ImageFolder, val: ImageFolder) {
        var train: [(url: URL, label: Int)] = [], val: [(url: URL, label: Int)] = []
        for label in classes.indices {
            var items = samples.filter { $0.label == label }
            var rng = RandomGenerator(seed: seed).derived(stream: UInt64(label))
            rng.shuffle(&items)
            let k = Int((valFraction * Double(items.count)).rounded())
            val += items.prefix(k)
            train += items.dropFirst(k)
        }
        return (ImageFolder(root: root, classes: classes, samples: train), ImageFolder(root: root, classes: classes, samples: val))
    }

    /// Keeps at most limit[c] samples of each class (first ones in sorted order), for imbalance experiments.
    public func limited(_ limits: [String: Int]) throws -> ImageFolder {
        for k in limits.keys where !classes.contains(k) {
            throw DatasetError(path: root.path, reason: "class_limits names '\(k)', which is not a class (classes: \(classes.joined(separator: ", ")))")
        }
        var kept: [Int: Int] = [:]
        let s = samples.filter { sample in
            let c = classes[sample.label]
            kept[sample.label, default: 0] += 1
            return limits[c].map { kept[sample.label]! <= $0 } ?? true
        }
        return ImageFolder(root: root, classes: classes, samples: s)
    }
}

import FinchTensor
