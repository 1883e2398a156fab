import Foundation
import FinchTensor
import FinchNN
import FinchData
import FinchIO

/// A trained model with everything an inference engine needs to feed it: class names and
/// preprocessing (resolution, crop, mean/std, interpolation).
public struct DeployableModel {
    public let model: ImageClassifier
    public let classes: [String]
    public let resolution: Int
    public let cropPct: Double
    public let interpolation: String
    public let mean: [Float]
    public let std: [Float]
    /// Epoch of the checkpoint it came from (nil for a plain weights file).
    public let epoch: Int?

    public var modelName: String { model.modelName }

    /// The evaluation transform the model was validated with.
    public var evalTransform: ImageTransform {
        var t = ImageTransform(size: resolution, training: false)
        t.cropPct = cropPct
        t.evalInterpolation = interpolation
        t.mean = mean
        t.std = std
        return t
    }

    /// Metadata stored beside the weights in every export format.
    public var metadata: [String: String] {
        func json(_ v: Any) -> String {
            String(decoding: (try? JSONSerialization.data(withJSONObject: v, options: [.withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        }
        return ["model": modelName, "num_classes": String(model.numClasses), "classes": json(classes),
                "resolution": String(resolution), "crop_pct": String(cropPct), "interpolation": interpolation,
                "mean": json(mean.map(Double.init)), "std": json(std.map(Double.init)), "format": "pt",
                "finch_version": FinchVersion.string]
    }
}

public enum ModelExportError: Error, CustomStringConvertible {
    case unknownFormat(String)
    case needsModelName(file: String)
    case wrongArchitecture(file: String, model: String, detail: String)
    case unwritable(path: String, reason: String)
    /// The file and what the command line or config says about the model disagree.
    case mismatch(file: String, field: String, recorded: String, given: String)
    /// A preprocessing field read from a file's metadata is out of range.
    case badMetadata(file: String, field: String, value: String, expected: String)
    /// A count or size handed to inference is out of range.
    case invalidArgument(name: String, value: Int, expected: String)

    public var description: String {
        switch self {
        case .unknownFormat(let f):
            return "unknown export format '\(f)'; choose one of: \(ModelExport.Format.allCases.map(\.rawValue).joined(separator: ", "))"
        case .needsModelName(let file):
            return "\(file): the weights file does not say which model it holds; pass --model NAME (and --num-classes K)"
        case .wrongArchitecture(let file, let model, let detail):
            return "\(file): these weights do not fit \(model): \(detail)"
        case .unwritable(let path, let reason):
            return "\(path): cannot write the export: \(reason)"
        case .mismatch(let file, let field, let recorded, let given):
            return "\(file): \(field) is \(recorded) in the file but \(given)"
        case .badMetadata(let file, let field, let value, let expected):
            return "\(file): metadata '\(field)' is \(value); expected \(expected)"
        case .invalidArgument(let name, let value, let expected):
            return "\(name) must be \(expected), got \(value)"
        }
    }
}

/// Loading trained models from checkpoints or weights files, and exporting them.
public enum ModelExport {
    public enum Format: String, CaseIterable, Sendable { case safetensors, hdf5, onnx, coreml }

    /// Loads a Finch checkpoint (`.h5` written by `train`) or a weights file (safetensors or HDF5
    /// with `/model`). For weights files without metadata, `modelName` (and `numClasses`, else
    /// read from the head's shape) say what to build. `ema` picks the EMA weights of a checkpoint.
    public static func load(_ url: URL, modelName: String? = nil, numClasses: Int? = nil, ema: Bool = false) throws -> DeployableModel {
        let path = url.path
        if let ck = try? Checkpoint.read(url) {
            var config: TrainConfig? = nil
            do { config = try TrainConfig.parse(ck.configYAML, source: "\(path):/config") } catch {
                // Weights still load; only the preprocessing falls back to the model's defaults.
                TrainLog.logger.warning("warning: \(error); using \(ck.modelName)'s default preprocessing")
            }
            // What the caller says must agree with what the checkpoint records, and the checkpoint's
            // own config with its header: otherwise weights load into the wrong head or model.
            if let modelName, modelName != ck.modelName {
                throw ModelExportError.mismatch(file: path, field: "the model", recorded: ck.modelName, given: "--model says \(modelName)")
            }
            if let numClasses, !ck.classes.isEmpty, numClasses != ck.classes.count {
                throw ModelExportError.mismatch(file: path, field: "the class count", recorded: "\(ck.classes.count) (\(ck.classes.joined(separator: ", ")))",
                                                given: "--num-classes says \(numClasses)")
            }
            if let config {
                if config.model.name != ck.modelName {
                    throw ModelExportError.mismatch(file: path, field: "the model", recorded: ck.modelName, given: "its config's model.name says \(config.model.name)")
                }
                if let k = config.model.numClasses, !ck.classes.isEmpty, k != ck.classes.count {
                    throw ModelExportError.mismatch(file: path, field: "the class count", recorded: String(ck.classes.count),
                                                    given: "its config's model.num_classes says \(k)")
                }
            }
            let name = ck.modelName
            let k = numClasses ?? (ck.classes.isEmpty ? nil : ck.classes.count)
            var state = try WeightsFile.read(url).state
            if ema {
                state = try readGroup(url, "ema")
            }
            let model = try build(name, numClasses: k, state: state, file: path)
            let pc = model.pretrainedConfig
            let d = config?.data
            return DeployableModel(model: model, classes: ck.classes.isEmpty ? (0..<model.numClasses).map(String.init) : ck.classes,
                                   resolution: d?.imageSize ?? pc.inputSize, cropPct: d?.cropPct ?? Double(pc.cropPct),
                                   interpolation: pc.interpolation, mean: d?.mean.map { $0.map(Float.init) } ?? pc.mean,
                                   std: d?.std.map { $0.map(Float.init) } ?? pc.std, epoch: ck.epoch)
        }
        let (state, meta) = try WeightsFile.read(url)
        guard let name = modelName ?? meta["model"] else { throw ModelExportError.needsModelName(file: path) }
        if let modelName, let recorded = meta["model"], recorded != modelName {
            throw ModelExportError.mismatch(file: path, field: "the model", recorded: recorded, given: "--model says \(modelName)")
        }
        // Metadata is file content: every field is checked like any other input, never guessed around.
        func bad(_ field: String, _ expected: String) -> ModelExportError {
            .badMetadata(file: path, field: field, value: "'\(meta[field] ?? "")'", expected: expected)
        }
        func int(_ field: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let s = meta[field] else { return nil }
            guard let v = Int(s), range.contains(v) else { throw bad(field, "an integer in \(range.lowerBound)…\(range.upperBound)") }
            return v
        }
        let recordedClasses = try int("num_classes", 1...TrainConfig.Limits.classes)
        if let numClasses, let recordedClasses, numClasses != recordedClasses {
            throw ModelExportError.mismatch(file: path, field: "the class count", recorded: String(recordedClasses), given: "--num-classes says \(numClasses)")
        }
        let model = try build(name, numClasses: numClasses ?? recordedClasses, state: state, file: path)
        let pc = model.pretrainedConfig
        func floats(_ key: String, _ valid: (Double) -> Bool) throws -> [Float]? {
            guard let s = meta[key] else { return nil }
            guard let a = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [Double], a.count == 3, a.allSatisfy(valid) else {
                throw bad(key, "a JSON list of 3 finite numbers\(key == "std" ? " above 0" : "")")
            }
            return a.map(Float.init)
        }
        var classes = (0..<model.numClasses).map(String.init)
        if let s = meta["classes"] {
            guard let a = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String] else { throw bad("classes", "a JSON list of strings") }
            guard a.count == model.numClasses else {
                throw ModelExportError.mismatch(file: path, field: "the class count", recorded: "\(model.numClasses) (the head's outputs)",
                                                given: "its metadata lists \(a.count) classes")
            }
            classes = a
        }
        var cropPct = Double(pc.cropPct)
        if let s = meta["crop_pct"] {
            guard let v = Double(s), v > 0 && v <= 1 else { throw bad("crop_pct", "a number in (0, 1]") }
            cropPct = v
        }
        let resolution = try int("resolution", TrainConfig.Limits.minImageSize...TrainConfig.Limits.maxImageSize) ?? pc.inputSize
        return DeployableModel(model: model, classes: classes, resolution: resolution, cropPct: cropPct,
                               interpolation: meta["interpolation"] ?? pc.interpolation, mean: try floats("mean") { $0.isFinite } ?? pc.mean,
                               std: try floats("std") { $0.isFinite && $0 > 0 } ?? pc.std, epoch: nil)
    }

    static func readGroup(_ url: URL, _ group: String) throws -> [String: StateValue] {
        let file = try HDF5File(reading: url)
        guard file.root.isGroup(group) else { throw HDF5Error.missing(file: url.path, path: "/\(group)") }
        let g = try file.root.group(group)
        var sd: [String: StateValue] = [:]
        for name in try g.memberNames() where g.isDataset(name) {
            sd[name] = try g.datasetTypeName(name).hasPrefix("int") ? .int64(try g.readInt64s(name), shape: try g.shape(name))
                : .float(try g.readTensor(name))
        }
        return sd
    }

    /// Builds `name` and loads `state` strictly; a mismatch names the file and the keys at fault.
    static func build(_ name: String, numClasses: Int?, state: [String: StateValue], file: String) throws -> ImageClassifier {
        let probe = try ModelRegistry.create(name, numClasses: 1)
        var k = numClasses
        if k == nil {
            // The head's output size, read from its weight (timm's classifier names).
            for prefix in probe.classifierPrefixes {
                if case .float(let w)? = state["\(prefix).weight"] { k = w.shape[0] }
            }
        }
        let model = try ModelRegistry.create(name, numClasses: k ?? 1000)
        do {
            try model.load(stateDict: state, strict: true)
        } catch {
            throw ModelExportError.wrongArchitecture(file: file, model: "\(name) (\(model.numClasses) classes)", detail: "\(error)")
        }
        model.eval()
        return model
    }

    /// A copy whose float weights went through float16 and back: what `--half` exports compute with.
    public static func roundedToHalf(_ m: DeployableModel) throws -> DeployableModel {
        let copy = try ModelRegistry.create(m.modelName, numClasses: m.model.numClasses)
        var state: [String: StateValue] = [:]
        for (name, value) in m.model.stateDict() {
            switch value {
            case .float(let t): state[name] = .float(Tensor(t.scalars.map { float(fromFloat16Bits: float16Bits($0)) }, shape: t.shape))
            case .int64: state[name] = value
            }
        }
        try copy.load(stateDict: state, strict: true)
        copy.eval()
        return DeployableModel(model: copy, classes: m.classes, resolution: m.resolution, cropPct: m.cropPct,
                               interpolation: m.interpolation, mean: m.mean, std: m.std, epoch: m.epoch)
    }

    /// Writes `m` as `format` to `url` (atomically: a failed export leaves no file). `half` stores
    /// float16 weights (safetensors, ONNX; Core ML computes in float16); `foldBatchNorm` folds BatchNorm
    /// into convolutions (ONNX, Core ML). `exportCoreML` has Core ML's other options.
    public static func export(_ m: DeployableModel, format: Format, to url: URL, foldBatchNorm: Bool = false,
                              half: Bool = false) throws {
        try checkWritableFolder(of: url)
        let state = m.model.stateDict()
        switch format {
        case .safetensors:
            let entries = state.map { (name: $0.name, value: SafeTensorsValue($0.value, half: half)) }
            try writeSafeTensors(entries, metadata: m.metadata, to: url)
        case .hdf5:
            try HDF5File.writeAtomically(to: url) { root in
                _ = try root.createGroup("model")
                for (name, value) in state {
                    switch value {
                    case .float(let t): try root.write("model/\(name)", tensor: t)
                    case .int64(let v, let s): try root.write("model/\(name)", int64s: v, shape: s)
                    }
                }
                for (k, v) in m.metadata.sorted(by: { $0.key < $1.key }) { try root.setAttribute(k, .string(v)) }
            }
        case .onnx:
            var meta = m.metadata
            meta["input"] = "float32 [N,3,\(m.resolution),\(m.resolution)], RGB scaled to [0,1] then (x - mean) / std"
            let exporter = ONNXExporter(foldBatchNorm: foldBatchNorm, halfPrecisionWeights: half, metadata: meta)
            let proto = try exporter.export(m.model, inputShape: [3, m.resolution, m.resolution], numClasses: m.model.numClasses,
                                            graphName: m.modelName)
            try ONNXExporter.write(proto, to: url)
        case .coreml:
            try exportCoreML(m, to: url, options: CoreMLExportOptions(precision: half ? .float16 : .float32, foldBatchNorm: foldBatchNorm))
        }
    }

    static func checkWritableFolder(of url: URL) throws {
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelExportError.unwritable(path: url.path, reason: "folder \(dir.path) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: dir.path) else {
            throw ModelExportError.unwritable(path: url.path, reason: "folder \(dir.path) is not writable")
        }
    }
}
