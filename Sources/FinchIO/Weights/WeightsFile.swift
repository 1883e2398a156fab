import Foundation
import FinchTensor
import FinchNN

/// Reading and writing model weights as state dicts, in safetensors or HDF5 (`/model/<name>`).
public enum WeightsFile {
    public enum Format: String, Sendable { case safetensors, hdf5, torch }

    public static func format(of url: URL) throws -> Format {
        // Sniff content, not the extension: HDF5 files start with "\x89HDF\r\n\x1a\n". A missing
        // path, a directory, FIFO or device is an `InputFileError` here, before any reader opens it.
        let head = Data(try fileHead(url.path, count: 8, what: "weights file"))
        if head == Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) { return .hdf5 }
        if head.prefix(4) == Data([0x50, 0x4B, 0x03, 0x04]) || head.first == 0x80 { return .torch }
        return .safetensors
    }

    /// The state dict stored in `url` plus the file's metadata (safetensors metadata, or the
    /// HDF5 root's string attributes).
    public static func read(_ url: URL) throws -> (state: [String: StateValue], metadata: [String: String]) {
        switch try format(of: url) {
        case .torch:
            var sd: [String: StateValue] = [:]
            for (name, value) in try TorchCheckpoint.read(url) { sd[name] = value }
            return (sd, [:])
        case .safetensors:
            let f = try SafeTensorsFile(contentsOf: url)
            var sd: [String: StateValue] = [:]
            for name in f.names {
                guard let info = f.info(name) else { continue }
                sd[name] = info.dtype.isInteger ? .int64(try f.int64s(name), shape: info.shape) : .float(try f.tensor(name))
            }
            return (sd, f.metadata)
        case .hdf5:
            let file = try HDF5File(reading: url)
            guard file.root.isGroup("model") else { throw HDF5Error.missing(file: url.path, path: "/model") }
            let g = try file.root.group("model")
            var sd: [String: StateValue] = [:]
            for name in try g.memberNames() where g.isDataset(name) {
                if try g.datasetTypeName(name).hasPrefix("int") {
                    sd[name] = .int64(try g.readInt64s(name), shape: try g.shape(name))
                } else {
                    sd[name] = .float(try g.readTensor(name))
                }
            }
            var meta: [String: String] = [:]
            for a in file.root.attributeNames() {
                switch try file.root.attribute(a) {
                case .string(let s): meta[a] = s
                case .double(let d): meta[a] = String(d)
                case .int64(let i): meta[a] = String(i)
                default: break
                }
            }
            return (sd, meta)
        }
    }
}

extension SafeTensorsValue {
    /// A state-dict entry as stored: floats as float32 (or float16 with `half`), integers exact.
    public init(_ value: StateValue, half: Bool = false) {
        switch value {
        case .float(let t): self = half ? .float16(t) : .float32(t)
        case .int64(let v, let s): self = .int64(v, shape: s)
        }
    }
}

/// What happened when pretrained weights were loaded.
public struct PretrainedLoadReport: Sendable, Equatable {
    public var loaded: Int
    /// Classifier tensors skipped because the checkpoint has another class count (head re-initialised).
    public var replacedHead: [String]
}

extension ImageClassifier {
    /// Loads pretrained weights (timm names). When the checkpoint's classifier has another number
    /// of classes and `replaceHead` is on, the backbone is loaded and the head stays freshly
    /// initialised, as timm does for `pretrained=True` with another `num_classes`; without it,
    /// any mismatch is an error listing the keys.
    @discardableResult
    public func loadPretrained(_ url: URL, replaceHead: Bool = true, seed: UInt64 = 0) throws -> PretrainedLoadReport {
        let (state, _) = try WeightsFile.read(url)
        return try loadPretrained(state: state, source: url.lastPathComponent, replaceHead: replaceHead, seed: seed)
    }

    @discardableResult
    public func loadPretrained(state: [String: StateValue], source: String, replaceHead: Bool = true,
                               seed: UInt64 = 0) throws -> PretrainedLoadReport {
        let ownShapes = Dictionary(uniqueKeysWithValues: stateDict().map { ($0.name, $0.value.shape) })
        let headKeys = state.keys.filter { Module.matches($0, prefixes: classifierPrefixes) }
        let headMismatch = headKeys.filter { ownShapes[$0] != nil && ownShapes[$0] != state[$0]!.shape }
        var filtered = state
        var replaced: [String] = []
        if !headMismatch.isEmpty && replaceHead {
            for k in headKeys { filtered.removeValue(forKey: k) }
            replaced = headKeys.sorted()
        }
        do {
            if replaced.isEmpty {
                try load(stateDict: filtered, strict: true)
            } else {
                // Everything but the head must still match exactly.
                let missing = ownShapes.keys.filter { filtered[$0] == nil && !Module.matches($0, prefixes: classifierPrefixes) }
                let unexpected = filtered.keys.filter { ownShapes[$0] == nil }
                if !missing.isEmpty || !unexpected.isEmpty {
                    throw StateDictError(missing: missing.sorted(), unexpected: unexpected.sorted(), mismatched: [])
                }
                try load(stateDict: filtered, strict: false)
                var rng = RandomGenerator(seed: seed)
                resetClassifier(numClasses: numClasses, using: &rng)
            }
        } catch var e as StateDictError {
            e.source = source
            throw e
        }
        return PretrainedLoadReport(loaded: filtered.count, replacedHead: replaced)
    }
}
