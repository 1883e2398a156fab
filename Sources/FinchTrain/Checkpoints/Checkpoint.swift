import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchIO

/// Everything a run needs to continue exactly, in the HDF5 layout of the design notes:
///
///     /                       attrs: format, version, epoch, global_step, best_metric, created,
///                                    model, num_classes, classes, finch_version (absent before 0.1.0)
///     /config                 the resolved YAML
///     /model/<name>           float32 (int64 for num_batches_tracked), PyTorch shapes
///     /optimizer              attrs: type, betas, eps, momentum, …
///     /optimizer/groups/<i>   attrs: name, lr, initial_lr, lr_scale, weight_decay, params
///     /optimizer/state/<param>/exp_avg, exp_avg_sq[, max_exp_avg_sq] (attr step) | momentum_buffer
///     /scheduler              attrs: last_t, plateau_best, plateau_bad_epochs, plateau_cooldown
///     /rng/<stream>           uint64 state words stored as int64 bit patterns
///     /ema/<name>             the averaged state dict (when EMA is on)
///     /metrics/<name>         float64 history, one value per epoch; attr name_encoding = "percent":
///                             "/" and "%" in a metric name are stored as %2F and %25 ("val/top1" is
///                             "val%2Ftop1"). Files without the attribute used ":" for the first "/".
public struct Checkpoint {
    public static let format = "finch-checkpoint"
    public static let version: Int64 = 1

    public var epoch: Int
    public var globalStep: Int
    public var bestMetric: Double
    public var modelName: String
    public var classes: [String]
    public var configYAML: String
    public var metrics: [String: [Double]]
    public var rngStates: [String: [UInt64]]
    /// The Finch release that wrote the file (`FinchVersion.string`); nil for files written before
    /// releases were numbered. Writing always records the running release.
    public var finchVersion: String?

    public init(epoch: Int, globalStep: Int, bestMetric: Double, modelName: String, classes: [String],
                configYAML: String, metrics: [String: [Double]] = [:], rngStates: [String: [UInt64]] = [:]) {
        self.epoch = epoch
        self.globalStep = globalStep
        self.bestMetric = bestMetric
        self.modelName = modelName
        self.classes = classes
        self.configYAML = configYAML
        self.metrics = metrics
        self.rngStates = rngStates
    }

    // MARK: Writing

    /// Writes atomically (temporary file, fsync, rename): a crash never leaves a partial `url`.
    /// A state holding NaN or ±inf is refused before anything is written.
    public func write(to url: URL, model: Module, optimizer: Optimizer?, scheduler: Scheduler?, ema: ModelEma?) throws {
        if let bad = Self.firstNonFinite(model: model, optimizer: optimizer, ema: ema) {
            throw CheckpointError.nonFinite(file: url.path, what: bad)
        }
        try HDF5File.writeAtomically(to: url) { root in
            try root.setAttribute("format", .string(Self.format))
            try root.setAttribute("version", .int64(Self.version))
            try root.setAttribute("epoch", .int64(Int64(epoch)))
            try root.setAttribute("global_step", .int64(Int64(globalStep)))
            try root.setAttribute("best_metric", .double(bestMetric))
            try root.setAttribute("created", .string(ISO8601DateFormatter().string(from: Date())))
            try root.setAttribute("model", .string(modelName))
            try root.setAttribute("num_classes", .int64(Int64(classes.count)))
            try root.setAttribute("classes", .strings(classes))
            try root.setAttribute("finch_version", .string(FinchVersion.string))
            try root.write("config", string: configYAML)
            try Self.writeState(model.stateDict(), to: root, prefix: "model")
            if let optimizer { try Self.writeOptimizer(optimizer, to: root) }
            if let scheduler {
                let g = try root.createGroup("scheduler"), state = scheduler.stateDict()
                try g.setAttribute("last_t", .int64(Int64(state.lastT)))
                try g.setAttribute("plateau_best", .double(state.plateauBest))
                try g.setAttribute("plateau_bad_epochs", .int64(Int64(state.plateauBadEpochs)))
                try g.setAttribute("plateau_cooldown", .int64(Int64(state.plateauCooldown)))
            }
            for (name, words) in rngStates.sorted(by: { $0.key < $1.key }) {
                try root.write("rng/\(name)", int64s: words.map { Int64(bitPattern: $0) })
            }
            if let ema { try Self.writeState(ema.entries, to: root, prefix: "ema") }
            let m = try root.createGroup("metrics")
            try m.setAttribute("name_encoding", .string(MetricName.encodingName))
            for (name, values) in metrics.sorted(by: { $0.key < $1.key }) {
                try m.write(MetricName.encode(name), doubles: values)
            }
        }
    }

    /// Finds the first tensor holding NaN or ±inf among everything a checkpoint stores: model
    /// state, optimizer moments or momentum, EMA weights. Writing such a state would replace a
    /// good checkpoint with one that can only produce NaN.
    public static func firstNonFinite(model: Module, optimizer: Optimizer?, ema: ModelEma?) -> String? {
        for (name, value) in model.stateDict() {
            if case .float(let t) = value, !finite(t) { return "model parameter \(name)" }
        }
        if let optimizer {
            for (name, state) in optimizer.stateDict().parameters {
                for (key, t) in state.tensors where !finite(t) { return "\(optimizer.describeState(key)) of \(name)" }
            }
        }
        for (name, value) in ema?.entries ?? [] {
            if case .float(let t) = value, !finite(t) { return "EMA weight \(name)" }
        }
        return nil
    }

    static func writeState(_ entries: [(name: String, value: StateValue)], to root: HDF5Group, prefix: String) throws {
        _ = try root.createGroup(prefix)
        for (name, value) in entries {
            switch value {
            case .float(let t): try root.write("\(prefix)/\(name)", tensor: t)
            case .int64(let v, let shape): try root.write("\(prefix)/\(name)", int64s: v, shape: shape)
            }
        }
    }

    static func writeOptimizer(_ optimizer: Optimizer, to root: HDF5Group) throws {
        let o = try root.createGroup("optimizer")
        for (i, g) in optimizer.groups.enumerated() {
            let gg = try o.createGroup("groups/\(i)")
            try gg.setAttribute("name", .string(g.name))
            try gg.setAttribute("lr", .double(Double(g.lr)))
            try gg.setAttribute("initial_lr", .double(Double(g.initialLR)))
            try gg.setAttribute("lr_scale", .double(Double(g.lrScale)))
            try gg.setAttribute("weight_decay", .double(Double(g.weightDecay)))
            try gg.setAttribute("params", .strings(g.parameters.map(\.name)))
        }
        let sd = optimizer.stateDict()
        try o.setAttribute("type", .string(sd.type ?? String(describing: type(of: optimizer))))
        for (key, value) in sd.hyperparameters {
            switch value {
            case .int64(let v): try o.setAttribute(key, .int64(v))
            case .double(let v): try o.setAttribute(key, .double(v))
            case .doubles(let v): try o.setAttribute(key, .doubles(v))
            }
        }
        for (name, state) in sd.parameters {
            let sg = try o.createGroup("state/\(name)")
            for (key, v) in state.counters { try sg.setAttribute(key, .int64(v)) }
            for (key, t) in state.tensors { try sg.write(key, tensor: t) }
        }
    }

    /// No NaN or ±inf among the elements.
    static func finite(_ t: Tensor) -> Bool {
        t.withContiguousBuffer { b in
            // An exponent of all ones marks inf and NaN; a branch-free maximum over the masked
            // exponents keeps the loop vectorisable on multi-million-element tensors.
            var worst: UInt32 = 0
            for v in b { worst = Swift.max(worst, v.bitPattern & 0x7f80_0000) }
            return worst != 0x7f80_0000
        }
    }

    // MARK: Reading

    /// Reads the header and bookkeeping; `restore` puts the tensors back into live objects.
    public static func read(_ url: URL) throws -> Checkpoint {
        let file = try HDF5File(reading: url)
        let r = file.root
        // Damage is an error of its own, never "not a checkpoint".
        let formatValue: HDF5AttributeValue?
        do { formatValue = try r.attribute("format") } catch let e as HDF5Error {
            if case .corrupted = e { throw e }
            formatValue = nil
        }
        guard case .string(let f)? = formatValue, f == format else {
            throw CheckpointError.notACheckpoint(file: url.path)
        }
        func count(_ k: String) throws -> Int {
            guard case .int64(let v) = try r.attribute(k), v >= 0 else { throw CheckpointError.corrupt(file: url.path, key: k) }
            return Int(v)
        }
        // ±inf is the "nothing monitored yet" start; NaN would make every later comparison false.
        guard case .double(let best) = try r.attribute("best_metric"), !best.isNaN else {
            throw CheckpointError.corrupt(file: url.path, key: "best_metric")
        }
        guard case .string(let model) = try r.attribute("model") else {
            throw CheckpointError.corrupt(file: url.path, key: "model")
        }
        var classes: [String] = []
        if r.hasAttribute("classes") {
            switch try r.attribute("classes") {
            case .strings(let c): classes = c
            case .string(let c): classes = [c]
            default: throw CheckpointError.corrupt(file: url.path, key: "classes")
            }
        }
        var metrics: [String: [Double]] = [:]
        if r.isGroup("metrics") {
            let g = try r.group("metrics")
            let encoding: String?
            switch try (g.hasAttribute("name_encoding") ? g.attribute("name_encoding") : nil) {
            case nil: encoding = nil
            case .string(let e)?: encoding = e
            default: throw CheckpointError.corrupt(file: url.path, key: "/metrics attribute name_encoding")
            }
            for n in try g.memberNames() {
                let name: String
                switch encoding {
                case nil: name = MetricName.decodeLegacy(n)
                case MetricName.encodingName?:
                    guard let d = MetricName.decode(n) else { throw CheckpointError.corrupt(file: url.path, key: "/metrics/\(n) (bad %-escape in the name)") }
                    name = d
                case let e?:
                    throw CheckpointError.mismatch(file: url.path, what: "metric names use encoding '\(e)', this Finch reads '\(MetricName.encodingName)'")
                }
                guard metrics[name] == nil else { throw CheckpointError.corrupt(file: url.path, key: "/metrics/\(n) (a second entry for \(name))") }
                metrics[name] = try g.readDoubles(n)
            }
        }
        var rng: [String: [UInt64]] = [:]
        if r.isGroup("rng") {
            let g = try r.group("rng")
            for n in try g.memberNames() { rng[n] = try g.readInt64s(n).map { UInt64(bitPattern: $0) } }
        }
        // Files from before the config was stored have none; one that is there must read back.
        let config = try (r.contains("config") ? r.readString("config") : "")
        var ck = Checkpoint(epoch: try count("epoch"), globalStep: try count("global_step"), bestMetric: best, modelName: model,
                            classes: classes, configYAML: config, metrics: metrics, rngStates: rng)
        if r.hasAttribute("finch_version") {
            guard case .string(let v) = try r.attribute("finch_version"), !v.isEmpty, v.count <= 64 else {
                throw CheckpointError.corrupt(file: url.path, key: "finch_version")
            }
            ck.finchVersion = v
        }
        return ck
    }

    /// Loads model weights, optimizer moments and groups' learning rates, scheduler position and
    /// EMA state from `url` into the given objects (built from the same config).
    public static func restore(from url: URL, model: Module, optimizer: Optimizer?, scheduler: Scheduler?, ema: ModelEma?) throws {
        let file = try HDF5File(reading: url)
        let r = file.root
        try model.load(stateDict: try readState(r, "model", file: url.path))
        if let optimizer, r.isGroup("optimizer") {
            let o = try r.group("optimizer")
            for (i, g) in optimizer.groups.enumerated() {
                let key = "groups/\(i)"
                guard o.isGroup(key) else { throw CheckpointError.mismatch(file: url.path, what: "optimizer has \(optimizer.groups.count) groups, checkpoint fewer") }
                let gg = try o.group(key)
                guard case .strings(let names) = try gg.attribute("params"), names == g.parameters.map(\.name) else {
                    throw CheckpointError.mismatch(file: url.path, what: "parameters of optimizer group \(i) ('\(g.name)') differ from the checkpoint's")
                }
                if case .double(let lr) = try gg.attribute("lr") {
                    guard lr.isFinite, lr >= 0 else { throw CheckpointError.corrupt(file: url.path, key: "/optimizer/\(key) attribute lr (\(lr))") }
                    g.lr = Float(lr)
                }
            }
            let state = try readOptimizerState(o, file: url.path)
            do { try optimizer.load(stateDict: state) } catch let e as OptimizerStateError { throw checkpointError(e, file: url.path) }
        }
        if let scheduler, r.isGroup("scheduler") {
            let g = try r.group("scheduler")
            guard case .int64(let t) = try g.attribute("last_t"), case .double(let best) = try g.attribute("plateau_best"),
                  case .int64(let bad) = try g.attribute("plateau_bad_epochs"), case .int64(let cool) = try g.attribute("plateau_cooldown") else {
                throw CheckpointError.corrupt(file: url.path, key: "scheduler")
            }
            do {
                try scheduler.load(stateDict: SchedulerState(lastT: Int(t), plateauBest: best, plateauBadEpochs: Int(bad), plateauCooldown: Int(cool)))
            } catch is SchedulerStateError {
                throw CheckpointError.corrupt(file: url.path, key: "/scheduler (last_t \(t), plateau_best \(best), plateau_bad_epochs \(bad), plateau_cooldown \(cool))")
            }
            // A plateau schedule's lrs live in the groups, restored above; others recompute theirs.
        }
        if let ema {
            guard r.isGroup("ema") else { throw CheckpointError.mismatch(file: url.path, what: "EMA is on but the checkpoint has no /ema") }
            try ema.restore(try readState(r, "ema", file: url.path))
        }
    }

    /// `/optimizer/state/<param>` as a state dict: every attribute is a counter, every dataset a
    /// tensor. Which of them the optimizer needs, and their shapes, the optimizer checks; its
    /// complaints are given back with the file's own paths.
    static func readOptimizerState(_ o: HDF5Group, file: String) throws -> OptimizerStateDict {
        var type: String?
        if o.hasAttribute("type") {
            guard case .string(let t) = try o.attribute("type") else { throw CheckpointError.corrupt(file: file, key: "/optimizer attribute type") }
            type = t
        }
        var sd = OptimizerStateDict(type: type)
        if o.isGroup("state") {
            let stateGroup = try o.group("state")
            for name in try stateGroup.memberNames() {
                guard stateGroup.isGroup(name) else { throw CheckpointError.corrupt(file: file, key: "/optimizer/state/\(name)") }
                let sg = try stateGroup.group(name)
                var state = ParameterState(tensors: [])
                for key in sg.attributeNames() {
                    guard case .int64(let v) = try sg.attribute(key) else {
                        throw CheckpointError.corrupt(file: file, key: "/optimizer/state/\(name) attribute \(key)")
                    }
                    state.counters.append((key, v))
                }
                for key in try sg.memberNames() { state.tensors.append((key, try sg.readTensor(key))) }
                sd.parameters.append((name, state))
            }
        }
        return sd
    }

    /// An optimizer's objection to a file's state, as the checkpoint error naming the entry.
    static func checkpointError(_ e: OptimizerStateError, file: String) -> CheckpointError {
        switch e {
        case .wrongType(let expected, let found):
            return .mismatch(file: file, what: "/optimizer holds \(found) state, the optimizer is \(expected)")
        case .unknownParameter(let p):
            return .mismatch(file: file, what: "/optimizer/state/\(p) is for a parameter in none of the optimizer's groups")
        case .missingEntry(let p, let k):
            return .corrupt(file: file, key: "/optimizer/state/\(p)/\(k)")
        case .unexpectedEntry(let p, let k):
            return .mismatch(file: file, what: "/optimizer/state/\(p)/\(k) is not part of this optimizer's state")
        case .shapeMismatch(let p, let k, let shape, let expected):
            return .mismatch(file: file, what: "/optimizer/state/\(p)/\(k) has shape \(shape), the parameter \(expected)")
        case .invalidCounter(let p, let k, let v):
            return .corrupt(file: file, key: "/optimizer/state/\(p) attribute \(k) (\(v))")
        }
    }

    static func readState(_ r: HDF5Group, _ prefix: String, file: String) throws -> [String: StateValue] {
        guard r.isGroup(prefix) else { throw CheckpointError.corrupt(file: file, key: "/\(prefix)") }
        let g = try r.group(prefix)
        var sd: [String: StateValue] = [:]
        for n in try g.memberNames() {
            if try g.datasetTypeName(n).hasPrefix("int") {
                sd[n] = .int64(try g.readInt64s(n), shape: try g.shape(n))
            } else {
                sd[n] = .float(try g.readTensor(n))
            }
        }
        return sd
    }
}

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notACheckpoint(file: String)
    case corrupt(file: String, key: String)
    case mismatch(file: String, what: String)
    case nonFinite(file: String, what: String)

    public var description: String {
        switch self {
        case .nonFinite(let f, let w): return "\(f): not written, \(w) holds NaN or infinity"
        case .notACheckpoint(let f): return "\(f): not a Finch checkpoint (no format=\"finch-checkpoint\" attribute)"
        case .corrupt(let f, let k): return "\(f): checkpoint entry \(k) is missing or malformed"
        case .mismatch(let f, let w): return "\(f): \(w)"
        }
    }
}

/// Metric names as HDF5 link names. A link name cannot hold "/", and names such as
/// "lr/decay:classifier" hold both the separator and ":", so the mapping escapes "%" and "/" as
/// %25 / %2F (and a leading "." so "." and ".." stay ordinary names): reversible, collision-free.
enum MetricName {
    static let encodingName = "percent"

    static func encode(_ name: String) -> String {
        var out = ""
        for (i, c) in name.unicodeScalars.enumerated() {
            switch c {
            case "%": out += "%25"
            case "/": out += "%2F"
            case "." where i == 0: out += "%2E"
            case "\0": out += "%00"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// nil when an escape is malformed.
    static func decode(_ stored: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(stored.utf8)[...]
        while let b = it.popFirst() {
            guard b == UInt8(ascii: "%") else { bytes.append(b); continue }
            guard let hi = it.popFirst().flatMap(hexValue), let lo = it.popFirst().flatMap(hexValue) else { return nil }
            bytes.append(hi << 4 | lo)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }

    /// Files before the encoding attribute stored "/" as ":". Every name the trainer writes has
    /// at most one "/" and it comes first ("lr/decay:classifier"), so only the first ":" is one.
    static func decodeLegacy(_ stored: String) -> String {
        guard let i = stored.firstIndex(of: ":") else { return stored }
        return stored.replacingCharacters(in: i...i, with: "/")
    }
}
