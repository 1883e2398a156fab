import Foundation

public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// `root/<class>/*.{jpg,jpeg,png}` (case-insensitive) as torchvision's ImageFolder: classes are
/// the sorted folder names, samples sorted paths within each class; hidden entries are skipped.
/// An entry with an image extension that is not a regular file (a directory named `x.jpg`, a
/// FIFO, a device) or that cannot be read is an error naming it, found here rather than when a
/// loader thread would block on it; files with other extensions are skipped, as timm lists by
/// extension. Symbolic links are followed.
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
            let listing: [String]
            do { listing = try fm.contentsOfDirectory(atPath: dir.path) } catch {
                throw DatasetError(path: dir.path, reason: "cannot read class folder '\(c)' (\(error.localizedDescription))")
            }
            let files = listing
                .filter { !$0.hasPrefix(".") && Self.extensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            guard !files.isEmpty else { throw DatasetError(path: dir.path, reason: "class folder '\(c)' has no .jpg/.jpeg/.png images") }
            for f in files { try Self.requireImageFile(dir.appendingPathComponent(f).path) }
            samples += files.map { (dir.appendingPathComponent($0), label) }
        }
        self.classes = classes
        self.samples = samples
    }

    /// A listed image must be a regular file the process may read. `stat` and `access` only: no
    /// open, so a FIFO cannot block and a large folder costs no reads.
    static func requireImageFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            throw DatasetError(path: path, reason: code == ENOENT ? "not found (or a dangling link)"
                               : "cannot stat the image: \(String(cString: strerror(code)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw DatasetError(path: path, reason: "is a \(InputFile.kindName(info.st_mode)), not an image file")
        }
        guard access(path, R_OK) == 0 else { throw DatasetError(path: path, reason: "not readable (permission denied)") }
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
    /// `valFraction` is checked where the config is read; here a value outside [0, 1] is a bug.
    public func stratifiedSplit(valFraction: Double, seed: UInt64) -> (train: ImageFolder, val: ImageFolder) {
        ensure(valFraction >= 0 && valFraction <= 1, "stratifiedSplit: val_fraction \(valFraction) is not in [0, 1]")
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
        for (k, v) in limits.sorted(by: { $0.key < $1.key }) where v < 0 {
            throw DatasetError(path: root.path, reason: "class_limits['\(k)'] = \(v): a limit must be 0 or more")
        }
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
