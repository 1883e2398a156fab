import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchIO

/// Everything a run needs to continue exactly, in the HDF5 layout of the design notes:
///
///     /                       attrs: format, version, epoch, global_step, best_metric, created,
///                                    model, num_classes, classes
///     /config                 the resolved YAML
///     /model/<name>           float32 (int64 for num_batches_tracked), PyTorch shapes
///     /optimizer              attrs: type, betas, eps, momentum, …
///     /optimizer/groups/<i>   attrs: name, lr, initial_lr, lr_scale, weight_decay, params
///     /optimizer/state/<param>/exp_avg, exp_avg_sq[, max_exp_avg_sq] (attr step) | momentum_buffer
///     /scheduler              attrs: last_t, plateau_best, plateau_bad_epochs, plateau_cooldown
///     /rng/<stream>           uint64 state words stored as int64 bit patterns
///     /ema/<name>             the averaged state dict (when EMA is on)
///     /metrics/<name>         float64 history, one value per epoch ("val/top1" stored as "val:top1")
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
    public func write(to url: URL, model: Module, optimizer: Optimizer?, scheduler: Scheduler?, ema: ModelEma?) throws {
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
            try root.write("config", string: configYAML)
            try Self.writeState(model.stateDict(), to: root, prefix: "model")
            if let optimizer { try Self.writeOptimizer(optimizer, to: root) }
            if let scheduler {
                let g = try root.createGroup("scheduler")
                try g.setAttribute("last_t", .int64(Int64(scheduler.lastT)))
                try g.setAttribute("plateau_best", .double(scheduler.plateauBest))
                try g.setAttribute("plateau_bad_epochs", .int64(Int64(scheduler.plateauBadEpochs)))
                try g.setAttribute("plateau_cooldown", .int64(Int64(scheduler.plateauCooldown)))
            }
            for (name, words) in rngStates.sorted(by: { $0.key < $1.key }) {
                try root.write("rng/\(name)", int64s: words.map { Int64(bitPattern: $0) })
            }
            if let ema { try Self.writeState(ema.entries, to: root, prefix: "ema") }
            for (name, values) in metrics.sorted(by: { $0.key < $1.key }) {
                // HDF5 names cannot hold "/": metric "val/top1" is stored as "val:top1".
                try root.write("metrics/\(name.replacingOccurrences(of: "/", with: ":"))", doubles: values)
            }
        }
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
        switch optimizer {
        case let a as AdamW:
            try o.setAttribute("type", .string("adamw"))
            try o.setAttribute("betas", .doubles([Double(a.betas.0), Double(a.betas.1)]))
            try o.setAttribute("eps", .double(Double(a.eps)))
            try o.setAttribute("amsgrad", .int64(a.amsgrad ? 1 : 0))
            for g in a.groups {
                for (name, p) in g.parameters {
                    guard let s = a.state(for: p) else { continue }
                    let sg = try o.createGroup("state/\(name)")
                    try sg.setAttribute("step", .int64(Int64(s.step)))
                    try sg.write("exp_avg", tensor: s.expAvg)
                    try sg.write("exp_avg_sq", tensor: s.expAvgSq)
                    if let m = s.maxExpAvgSq { try sg.write("max_exp_avg_sq", tensor: m) }
                }
            }
        case let s as SGD:
            try o.setAttribute("type", .string("sgd"))
            try o.setAttribute("momentum", .double(Double(s.momentum)))
            try o.setAttribute("dampening", .double(Double(s.dampening)))
            try o.setAttribute("nesterov", .int64(s.nesterov ? 1 : 0))
            for g in s.groups {
                for (name, p) in g.parameters {
                    guard let b = s.momentumBuffer(for: p) else { continue }
                    try o.write("state/\(name)/momentum_buffer", tensor: b)
                }
            }
        default:
            try o.setAttribute("type", .string(String(describing: type(of: optimizer))))
        }
    }

    // MARK: Reading

    /// Reads the header and bookkeeping; `restore` puts the tensors back into live objects.
    public static func read(_ url: URL) throws -> Checkpoint {
        let file = try HDF5File(reading: url)
        let r = file.root
        guard case .string(let f)? = try? r.attribute("format"), f == format else {
            throw CheckpointError.notACheckpoint(file: url.path)
        }
        func int(_ k: String) throws -> Int {
            guard case .int64(let v) = try r.attribute(k) else { throw CheckpointError.corrupt(file: url.path, key: k) }
            return Int(v)
        }
        guard case .double(let best) = try r.attribute("best_metric"),
              case .string(let model) = try r.attribute("model") else {
            throw CheckpointError.corrupt(file: url.path, key: "best_metric/model")
        }
        var classes: [String] = []
        if case .strings(let c)? = try? r.attribute("classes") { classes = c }
        var metrics: [String: [Double]] = [:]
        if r.isGroup("metrics") {
            let g = try r.group("metrics")
            for n in try g.memberNames() { metrics[n.replacingOccurrences(of: ":", with: "/")] = try g.readDoubles(n) }
        }
        var rng: [String: [UInt64]] = [:]
        if r.isGroup("rng") {
            let g = try r.group("rng")
            for n in try g.memberNames() { rng[n] = try g.readInt64s(n).map { UInt64(bitPattern: $0) } }
        }
        return Checkpoint(epoch: try int("epoch"), globalStep: try int("global_step"), bestMetric: best, modelName: model,
                          classes: classes, configYAML: (try? r.readString("config")) ?? "", metrics: metrics, rngStates: rng)
    }

    /// Loads model weights, optimizer moments and groups' learning rates, scheduler position and
    /// EMA state from `url` into the given objects (built from the same config).
    public static func restore(from url: URL, model: Module, optimizer: Optimizer?, scheduler: Scheduler?, ema: ModelEma?) throws {
        let file = try HDF5File(reading: url)
        let r = file.root
        try model.load(stateDict: try readState(r, "model", file: url.path))
        if let optimizer, r.isGroup("optimizer") {
            let o = try r.group("optimizer")
            let byName = Dictionary(optimizer.groups.flatMap { $0.parameters }.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for (i, g) in optimizer.groups.enumerated() {
                let key = "groups/\(i)"
                guard o.isGroup(key) else { throw CheckpointError.mismatch(file: url.path, what: "optimizer has \(optimizer.groups.count) groups, checkpoint fewer") }
                let gg = try o.group(key)
                guard case .strings(let names) = try gg.attribute("params"), names == g.parameters.map(\.name) else {
                    throw CheckpointError.mismatch(file: url.path, what: "parameters of optimizer group \(i) ('\(g.name)') differ from the checkpoint's")
                }
                if case .double(let lr) = try gg.attribute("lr") { g.lr = Float(lr) }
            }
            let stateGroup = o.isGroup("state") ? try o.group("state") : nil
            for name in (try stateGroup?.memberNames()) ?? [] {
                guard let p = byName[name], let sg = try stateGroup?.group(name) else { continue }
                switch optimizer {
                case let a as AdamW:
                    guard case .int64(let step) = try sg.attribute("step") else { continue }
                    a.restoreState(for: p, step: Int(step), expAvg: try sg.readTensor("exp_avg"), expAvgSq: try sg.readTensor("exp_avg_sq"),
                                   maxExpAvgSq: sg.isDataset("max_exp_avg_sq") ? try sg.readTensor("max_exp_avg_sq") : nil)
                case let s as SGD:
                    s.restoreMomentumBuffer(for: p, try sg.readTensor("momentum_buffer"))
                default: break
                }
            }
        }
        if let scheduler, r.isGroup("scheduler") {
            let g = try r.group("scheduler")
            guard case .int64(let t) = try g.attribute("last_t"), case .double(let best) = try g.attribute("plateau_best"),
                  case .int64(let bad) = try g.attribute("plateau_bad_epochs"), case .int64(let cool) = try g.attribute("plateau_cooldown") else {
                throw CheckpointError.corrupt(file: url.path, key: "scheduler")
            }
            scheduler.restore(lastT: Int(t), plateauBest: best, plateauBadEpochs: Int(bad), plateauCooldown: Int(cool))
            // A plateau schedule's lrs live in the groups, restored above; others recompute theirs.
        }
        if let ema {
            guard r.isGroup("ema") else { throw CheckpointError.mismatch(file: url.path, what: "EMA is on but the checkpoint has no /ema") }
            try ema.restore(try readState(r, "ema", file: url.path))
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

    public var description: String {
        switch self {
        case .notACheckpoint(let f): return "\(f): not a Finch checkpoint (no format=\"finch-checkpoint\" attribute)"
        case .corrupt(let f, let k): return "\(f): checkpoint entry \(k) is missing or malformed"
        case .mismatch(let f, let w): return "\(f): \(w)"
        }
    }
}
