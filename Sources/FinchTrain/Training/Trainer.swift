import Foundation
import Synchronization
import FinchTensor
import FinchNN
import FinchOptim
import FinchIO

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(epoch: Int, step: Int, value: Float)
    /// A parameter, optimizer moment or EMA weight holds NaN/inf (e.g. a finite loss with an
    /// overflowing gradient); found before it could reach a checkpoint.
    case nonFiniteState(epoch: Int, step: Int, what: String)
    /// Writing a checkpoint failed (disk full, permissions…); files are replaced atomically, so
    /// every checkpoint written before is unchanged.
    case checkpointWriteFailed(file: String, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let e, let s, let v):
            return "training stopped: the loss became \(v.isNaN ? "NaN" : String(v)) at epoch \(e + 1), global step \(s); the last good checkpoint is kept"
        case .nonFiniteState(let e, let s, let w):
            return "training stopped: \(w) became NaN or infinite in epoch \(e + 1), by global step \(s); the last good checkpoint is kept"
        case .checkpointWriteFailed(let f, let r):
            return "training stopped: could not write the checkpoint \(f) (\(r)); the checkpoints written before it are unchanged"
        case .invalid(let m): return m
        }
    }
}

/// One epoch's numbers.
public struct EpochRecord: Sendable {
    public var epoch: Int
    public var values: [String: Double]
    public var perClassAccuracy: [Double]
    public var confusion: [[Int]]
}

/// Hooks for scripts: logging, custom stopping, sweeps.
public protocol TrainerCallback: AnyObject {
    func trainerDidFinishStep(_ trainer: Trainer, loss: Float)
    func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord)
}

extension TrainerCallback {
    public func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {}
    public func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {}
}

/// Fine-tunes a model from a `TrainConfig`: fine-tuning mode, layer-wise parameter groups, timm
/// schedule, label smoothing / MixUp soft targets, optional teacher distillation, gradient
/// clipping and accumulation, EMA, per-epoch evaluation, checkpoints and early stopping.
public final class Trainer {
    public let config: TrainConfig
    public let model: ImageClassifier
    public let teacher: ImageClassifier?
    public let trainData: BatchSource
    public let valData: BatchSource?
    public var mixer: BatchMixer?
    public private(set) var optimizer: Optimizer
    public private(set) var scheduler: Scheduler?
    public let ema: ModelEma?
    let emaModel: ImageClassifier?
    public var callbacks: [TrainerCallback] = []
    public var progress = ProgressReporter()
    public var checkpointDirectory: URL?
    public var runDirectory: URL?
    public var studentNormalization: (mean: [Float], std: [Float])
    public var teacherNormalization: (mean: [Float], std: [Float])
    /// Set for a data-parallel run (FinchTrain/Distributed): the loaders then yield this rank's
    /// share of each batch. Nil trains alone, on the path single runs always took.
    public var dataParallel: DataParallel?

    /// Next epoch to run, optimizer updates so far, batches done in the current epoch.
    public private(set) var epoch = 0
    public private(set) var globalStep = 0
    public private(set) var stepInEpoch = 0
    public private(set) var history: [String: [Double]] = [:]
    public private(set) var records: [EpochRecord] = []
    public private(set) var bestMetric: Double
    public private(set) var bestEpoch = -1
    private var fineTuneApplied: String = ""

    /// Set from a signal handler: finish the step, checkpoint, stop.
    public static let stopRequest = Atomic<Bool>(false)

    public var totalEpochs: Int { config.schedule.epochs + (config.schedule.warmupPrefix ? config.schedule.warmupEpochs : 0) }
    public var numClasses: Int { model.numClasses }

    public init(config: TrainConfig, model: ImageClassifier, train: BatchSource, val: BatchSource?,
                teacher: ImageClassifier? = nil, mixer: BatchMixer? = nil, emaModel: ImageClassifier? = nil) throws {
        self.config = config
        self.model = model
        self.trainData = train
        self.valData = val
        self.teacher = teacher
        self.mixer = mixer
        bestMetric = config.checkpoint.mode == .max ? -.infinity : .infinity
        let pc = model.pretrainedConfig
        studentNormalization = (config.data.mean.map { $0.map(Float.init) } ?? pc.mean, config.data.std.map { $0.map(Float.init) } ?? pc.std)
        teacherNormalization = studentNormalization
        if let t = teacher {
            let d = config.distill!.teacher
            teacherNormalization = Distillation.teacherNormalization(d, model: t)
            t.eval()
            t.freeze()
            // view: own needs the loader's second rendering; resizing the student's batch instead
            // would quietly train on the view the config turned down.
            let studentSize = config.data.imageSize ?? pc.inputSize
            if Distillation.rendersOwnView(config, studentSize: studentSize), train.teacherViewSize != d.imageSize {
                throw TrainingError.invalid("distill.teacher.view is own, but the training batches carry \(train.teacherViewSize.map { "a \($0)-px teacher view" } ?? "no teacher view") for a \(d.imageSize!)-px teacher (set distill.teacher.view: resized to resize the student's batch)")
            }
        }
        guard train.classes.count == model.numClasses else {
            throw TrainingError.invalid("the training data has \(train.classes.count) classes but the model has \(model.numClasses) outputs")
        }
        if let v = val, v.classes != train.classes {
            throw TrainingError.invalid("train and val class lists differ: \(train.classes) vs \(v.classes)")
        }
        (optimizer, scheduler) = (AdamW(groups: []), nil)
        if let e = config.ema {
            ema = ModelEma(model: model, decay: e.decay, useWarmup: e.warmup)
            self.emaModel = e.evaluate ? emaModel : nil
        } else {
            ema = nil
            self.emaModel = nil
        }
        try applyFineTuning(forEpoch: 0)
    }

    // MARK: Set-up

    /// The fine-tuning mode in force at `epoch` (gradual unfreezing switches head → full).
    func fineTuneMode(forEpoch e: Int) -> FineTuning.Mode {
        if let u = config.finetune.unfreezeAtEpoch { return e < u ? .head : .full }
        return config.finetune.mode
    }

    /// Applies the mode and, when the set of trained parameters changes, rebuilds the parameter
    /// groups. The optimizer state of parameters that keep training and the schedule's memory
    /// (a plateau's best value, bad epochs, cooldown and reductions) are carried over; the
    /// position is recomputed from the step counters.
    func applyFineTuning(forEpoch e: Int) throws {
        let mode = fineTuneMode(forEpoch: e)
        guard mode.rawValue != fineTuneApplied else { return }
        fineTuneApplied = mode.rawValue
        FineTuning.apply(mode, to: model, unfreeze: config.finetune.unfreeze, freezeBatchNorm: config.finetune.freezeBN)
        let (previous, previousScheduler) = (optimizer, scheduler)
        (optimizer, scheduler) = makeOptimizer()
        try optimizer.carryState(from: previous)
        if globalStep > 0 || e > 0, let scheduler {
            var state = previousScheduler?.stateDict() ?? scheduler.stateDict()
            state.lastT = config.schedule.onUpdates ? globalStep : e
            try scheduler.load(stateDict: state)
            if let previousScheduler { scheduler.continueRates(from: previousScheduler) }
        }
    }

    func makeOptimizer() -> (Optimizer, Scheduler?) {
        let o = config.optimizer
        let groups = ParameterGrouping.groups(for: model, options: ParameterGroupingOptions(
            lr: Float(config.effectiveLR), weightDecay: Float(o.weightDecay), layerDecay: o.layerDecay.map(Float.init),
            minScale: Float(o.layerDecayMinScale),
            prefixRates: o.layerLR.map { ($0.0, .lr(Float($0.1))) } + o.layerLRMultiplier.map { ($0.0, .multiplier(Float($0.1))) }))
        let opt: Optimizer
        switch o.name {
        case .adamw:
            let b = o.betas ?? [0.9, 0.999]
            opt = AdamW(groups: groups, betas: (Float(b[0]), Float(b[1])), eps: Float(o.eps ?? 1e-8))
        case .momentum:
            opt = SGD(groups: groups, momentum: Float(o.momentum), nesterov: false)
        case .sgd:
            // timm's "sgd" is SGD with Nesterov momentum.
            opt = SGD(groups: groups, momentum: Float(o.momentum), nesterov: true)
        }
        let s = config.schedule
        let kind: Scheduler.Kind?
        switch s.name {
        case .cosine: kind = .cosine(cycleDecay: 0.1)
        case .step: kind = .step(decayT: s.decayEpochs, decayRate: s.decayRate)
        case .multistep: kind = .multistep(milestones: s.decayMilestones, decayRate: s.decayRate)
        case .plateau: kind = .plateau(mode: config.checkpoint.mode == .min ? .min : .max, patience: s.patienceEpochs, decayRate: s.decayRate)
        case .constant: kind = .constant
        case .none: kind = nil
        }
        let sched = kind.map {
            Scheduler(kind: $0, groups: groups, epochs: s.epochs, warmupEpochs: s.warmupEpochs, warmupLR: s.warmupLR,
                      minLR: s.minLR, warmupPrefix: s.warmupPrefix,
                      updatesPerEpoch: s.onUpdates ? max(1, trainData.batchCount / config.optimizer.accumulationSteps) : nil)
        }
        return (opt, sched)
    }

    // MARK: Training

    /// Runs the remaining epochs; returns when done, stopped early, or asked to stop.
    @discardableResult
    public func fit() throws -> [EpochRecord] {
        while epoch < totalEpochs {
            try applyFineTuning(forEpoch: epoch)
            let record = try runEpoch()
            guard let record else { break }   // stop requested mid-epoch
            if shouldStopEarly(record) {
                progress.epochLine("early stopping: \(config.earlyStopping!.monitor) has not improved for \(config.earlyStopping!.patience) epochs")
                break
            }
            if dataParallel?.agreeOnStop(Trainer.stopRequest.load(ordering: .relaxed)) ?? Trainer.stopRequest.load(ordering: .relaxed) { break }
        }
        return records
    }

    /// One epoch of training and evaluation; nil when a stop request interrupted it.
    func runEpoch() throws -> EpochRecord? {
        let started = Date()
        model.train()
        teacher?.eval()
        let smoothing = Float(config.mixup.labelSmoothing)
        var accumulation = GradientAccumulation(steps: config.optimizer.accumulationSteps)
        var lossSum: Double = 0, seen = 0, correct = 0, countedForAccuracy = 0
        let batches = trainData.batchCount
        let trainStart = Date()
        let iterator = try trainData.batches(epoch: epoch, startingAt: stepInEpoch)
        while let next = iterator.next() {
            let batch = try next.get()
            var images = batch.images
            var targets: Tensor? = nil
            var teacherImages = batch.teacherImages
            if let mixer, config.mixup.enabled {
                (images, targets, teacherImages) = dataParallel?.mix(batch, with: mixer, numClasses: numClasses)
                    ?? mixer.mixViews(batch, numClasses: numClasses)
                if batch.teacherImages != nil && teacherImages == nil {
                    throw TrainingError.invalid("the batch mixer \(type(of: mixer)) does not mix the teacher's own view (distill.teacher.view: own); set distill.teacher.view: resized")
                }
            }
            dataParallel?.shareRandomness(model.randomSource, localCount: batch.labels.count)
            let logits = model(images)
            var loss = targets.map { Loss.softTargetCrossEntropy(logits, targets: $0) }
                ?? Loss.crossEntropy(logits, labels: batch.labels, labelSmoothing: smoothing)
            if let teacher, let d = config.distill {
                // The loader's own rendering for the teacher when it made one (view: own), else
                // the student's batch adapted to it.
                let tl = noGrad { teacher(teacherImages ?? Distillation.teacherInput(images, from: studentNormalization, to: teacherNormalization,
                                                                                     imageSize: d.teacher.imageSize)) }
                loss = Distillation.loss(task: loss, student: logits, teacher: tl, kind: d.kind,
                                         alpha: Float(d.alpha), temperature: Float(d.temperature))
            }
            let localLoss = loss.item
            var value = localLoss
            if let dataParallel {
                let shared = dataParallel.exchangeStep(localCount: batch.labels.count, localLoss: value,
                                                       stopRequested: Trainer.stopRequest.load(ordering: .relaxed))
                loss = loss * shared.weight
                value = shared.loss
            }
            guard value.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, step: globalStep, value: value) }
            let scaled = accumulation.steps == 1 ? loss : loss * accumulation.lossScale
            if let dataParallel {
                let stepsNext = accumulation.position + 1 == accumulation.steps || stepInEpoch + 1 == batches
                dataParallel.backward(scaled, params: model.parameters.filter(\.requiresGrad), stepsNext: stepsNext)
            } else { scaled.backward() }
            if accumulation.microBatchDone() || stepInEpoch + 1 == batches { optimizerStep() }
            stepInEpoch += 1
            // Mid-epoch checkpoints (checkpoint.every_steps) for long epochs; resume continues at the next batch.
            if let n = config.checkpoint.everySteps, globalStep % n == 0, stepInEpoch < batches, let dir = checkpointDirectory,
               accumulation.position == 0 {
                try writeCheckpoint(to: dir.appendingPathComponent("last.h5"))
            }
            lossSum += Double(localLoss) * Double(batch.labels.count)
            seen += batch.labels.count
            if targets == nil {
                correct += zip(noGrad { logits.argmax(axis: 1) }, batch.labels).filter { $0 == $1 }.count
                countedForAccuracy += batch.labels.count
            }
            for c in callbacks { c.trainerDidFinishStep(self, loss: value) }
            let elapsed = Date().timeIntervalSince(trainStart)
            let rate = Double(seen) / max(elapsed, 1e-9)
            progress.step(epoch: epoch + 1, epochs: totalEpochs, batch: stepInEpoch, batches: batches, loss: lossSum / Double(seen),
                          accuracy: countedForAccuracy > 0 ? Double(correct) / Double(countedForAccuracy) : nil, imagesPerSecond: rate,
                          eta: elapsed / Double(max(stepInEpoch, 1)) * Double(batches - stepInEpoch))
            if (dataParallel?.stopAgreed ?? Trainer.stopRequest.load(ordering: .relaxed)) && stepInEpoch < batches { return nil }
        }
        if let dataParallel {
            try dataParallel.finishEpoch(self, totals: &lossSum, &seen, &correct, &countedForAccuracy)
        }
        // A finite loss does not rule out an overflowing gradient; poisoned weights would make the
        // evaluation below meaningless (NaN logits still have an arg-max) and the checkpoints useless.
        try requireFiniteState()
        let trainSeconds = Date().timeIntervalSince(trainStart)
        var values: [String: Double] = [
            "train/loss": seen > 0 ? lossSum / Double(seen) : .nan,
            "train/img_per_s": Double(seen) / max(trainSeconds, 1e-9),
        ]
        if countedForAccuracy > 0 { values["train/top1"] = Double(correct) / Double(countedForAccuracy) }
        if trainData.skippedCount > 0 { values["train/skipped_images"] = Double(trainData.skippedCount) }
        for g in optimizer.groups { values["lr/\(g.name)"] = Double(g.lr) }
        let rate = baseLR
        if let dataParallel { values.merge(dataParallel.takeEpochFigures()) { $1 } }
        var perClass: [Double] = [], confusion: [[Int]] = []
        if let valData {
            let evalStart = Date()
            let m = try evaluate(model, on: valData)
            values["val/loss"] = m.meanLoss
            values["val/top1"] = m.top1
            values["val/top5"] = m.top5
            values["val/balanced_accuracy"] = m.balancedAccuracy
            values["val/img_per_s"] = Double(m.count) / max(Date().timeIntervalSince(evalStart), 1e-9)
            perClass = m.perClassAccuracy
            confusion = m.confusion
            if let ema, let emaModel {
                try ema.copy(into: emaModel)
                let me = try evaluate(emaModel, on: valData)
                values["val_ema/top1"] = me.top1
                values["val_ema/loss"] = me.meanLoss
            }
        }
        values["epoch_seconds"] = Date().timeIntervalSince(started)
        let record = EpochRecord(epoch: epoch, values: values, perClassAccuracy: perClass, confusion: confusion)
        records.append(record)
        // History rows are epochs since the start of training, which after a resume is more than
        // `records` (this process's epochs): a new key is padded to the rows before this epoch.
        for (k, v) in values { history[k, default: Array(repeating: .nan, count: record.epoch)].append(v) }
        for k in history.keys where history[k]!.count < record.epoch + 1 { history[k]!.append(.nan) }

        epoch += 1
        stepInEpoch = 0
        let monitored = Self.trustedValue(config.checkpoint.monitor, in: values)
        // An untrustworthy value is a bad epoch for a plateau schedule, an absent one no epoch at all.
        scheduler?.step(epoch: epoch, metric: values[config.checkpoint.monitor].map { _ in monitored ?? .nan })
        let improved = monitored.map { config.checkpoint.mode == .max ? $0 > bestMetric : $0 < bestMetric } ?? false
        if improved, let monitored {
            bestMetric = monitored
            bestEpoch = record.epoch
        }
        try saveCheckpoints(improved: improved)
        progress.epochLine(Self.summaryLine(record, epochs: totalEpochs, baseLR: rate, classes: numClasses))
        for c in callbacks { c.trainerDidFinishEpoch(self, record: record) }
        return record
    }

    func optimizerStep() {
        let params = model.parameters.filter(\.requiresGrad)
        dataParallel?.reduceGradients(params)
        if let clip = config.optimizer.clipGrad {
            if config.optimizer.clipMode == .value { GradientClipping.clipValue(params, clip: Float(clip)) }
            else { GradientClipping.clipNorm(params, maxNorm: Float(clip)) }
        }
        optimizer.step()
        optimizer.zeroGrad()
        globalStep += 1
        if config.schedule.onUpdates { scheduler?.stepUpdate(globalStep) }
        ema?.update(from: model, step: globalStep)
    }

    /// Counted over the whole history, not this process's epochs, so a resumed run keeps its
    /// count; an epoch whose monitored value cannot be trusted counts as no improvement.
    func shouldStopEarly(_ record: EpochRecord) -> Bool {
        guard let es = config.earlyStopping, let series = history[es.monitor] else { return false }
        let lossKey = Self.lossKey(for: es.monitor)
        let losses = lossKey.flatMap { history[$0] }
        var best: Double? = nil, without = 0
        for (row, v) in series.enumerated() {
            var values = [es.monitor: v]
            if let lossKey, let losses, row < losses.count { values[lossKey] = losses[row] }
            guard let v = Self.trustedValue(es.monitor, in: values) else { without += 1; continue }
            let improved = best.map { es.mode == .max ? v > $0 + es.minDelta : v < $0 - es.minDelta } ?? true
            without = improved ? 0 : without + 1
            best = best.map { es.mode == .max ? max($0, v) : min($0, v) } ?? v
        }
        return without >= es.patience
    }

    /// The loss of the pass that produced `metric` ("val/loss" for "val/top1"), if it has one.
    static func lossKey(for metric: String) -> String? {
        guard let slash = metric.firstIndex(of: "/") else { return nil }
        let key = metric[..<slash] + "/loss"
        return key == metric ? nil : String(key)
    }

    /// The monitored value when it can count: finite, and from a pass whose loss was finite
    /// (a NaN input gives NaN logits, whose arg-max still yields a finite, meaningless accuracy).
    static func trustedValue(_ metric: String, in values: [String: Double]) -> Double? {
        guard let v = values[metric], v.isFinite else { return nil }
        if let k = lossKey(for: metric), let loss = values[k], !loss.isFinite { return nil }
        return v
    }

    /// Eval-mode pass with plain cross-entropy (timm's validate), no gradient recording.
    public func evaluate(_ m: ImageClassifier, on data: BatchSource) throws -> ClassificationMetrics {
        let wasTraining = m.isTraining
        m.eval()
        defer { m.train(wasTraining) }
        var metrics = ClassificationMetrics(numClasses: m.numClasses)
        let it = try data.batches(epoch: 0, startingAt: 0)
        while let next = it.next() {
            let b = try next.get()
            if dataParallel != nil && b.labels.isEmpty { continue }   // a last batch smaller than the ranks
            noGrad {
                let logits = m(b.images)
                metrics.add(logits: logits, labels: b.labels, meanLoss: Loss.crossEntropy(logits, labels: b.labels).item)
            }
        }
        // A sharded source gave this rank its share of the set; the ranks' shares make the whole.
        if let dataParallel, (data as? LoaderBatchSource)?.loader.shard.count ?? 1 > 1 { return dataParallel.combine(metrics) }
        return metrics
    }

    // MARK: Checkpoints

    public var randomStates: [String: [UInt64]] {
        var s = ["dropout": model.randomSource.generator.state]
        if let mixer { s["mixup"] = mixer.randomState }
        return s
    }

    /// The checkpoint of the current position (used for last.h5, best.h5 and on stop).
    public func checkpoint() -> Checkpoint {
        Checkpoint(epoch: epoch, globalStep: globalStep, bestMetric: bestMetric, modelName: model.modelName,
                   classes: trainData.classes, configYAML: config.resolvedYAML, metrics: history, rngStates: randomStates)
    }

    /// Stops the run when anything a checkpoint would hold is NaN or infinite.
    func requireFiniteState() throws {
        if let bad = Checkpoint.firstNonFinite(model: model, optimizer: optimizer, ema: ema) {
            throw TrainingError.nonFiniteState(epoch: epoch, step: globalStep, what: bad)
        }
    }

    /// Writes the current state; a state holding NaN or infinity is refused (nothing is written)
    /// and stops the run with `TrainingError.nonFiniteState`.
    public func writeCheckpoint(to url: URL) throws {
        var c = checkpoint()
        c.metrics["_trainer/step_in_epoch"] = [Double(stepInEpoch)]
        c.metrics["_trainer/best_epoch"] = [Double(bestEpoch)]
        do {
            try c.write(to: url, model: model, optimizer: optimizer, scheduler: scheduler, ema: ema)
        } catch CheckpointError.nonFinite(_, let what) {
            // At an epoch boundary `epoch` already names the next one.
            throw TrainingError.nonFiniteState(epoch: stepInEpoch == 0 ? max(epoch - 1, 0) : epoch, step: globalStep, what: what)
        } catch {
            throw TrainingError.checkpointWriteFailed(file: url.path, reason: "\(error)")
        }
    }

    /// best.h5 and epoch-N.h5 first, last.h5 last: last.h5 is what a resume starts from, so it
    /// is written only once the files it refers to (its best epoch) exist. A failed write throws
    /// and nothing after it is written; each file is replaced atomically, so the previous one stays.
    func saveCheckpoints(improved: Bool) throws {
        guard let dir = checkpointDirectory else { return }
        if improved { try writeCheckpoint(to: dir.appendingPathComponent("best.h5")) }
        if config.checkpoint.keep > 0 { try writeCheckpoint(to: dir.appendingPathComponent("epoch-\(epoch).h5")) }
        if epoch % config.checkpoint.every == 0 || epoch == totalEpochs { try writeCheckpoint(to: dir.appendingPathComponent("last.h5")) }
        if config.checkpoint.keep > 0 {
            let fm = FileManager.default
            let old = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            let epochs = old.compactMap { n -> Int? in
                guard n.hasPrefix("epoch-"), n.hasSuffix(".h5") else { return nil }
                return Int(n.dropFirst(6).dropLast(3))
            }.sorted()
            for e in epochs.dropLast(config.checkpoint.keep) { try? fm.removeItem(at: dir.appendingPathComponent("epoch-\(e).h5")) }
        }
    }

    /// Continues from a checkpoint written by this trainer's config: weights, optimizer, schedule,
    /// EMA, random streams, history, and the position inside the epoch. The file's bookkeeping is
    /// checked against this run (model, classes, batches per epoch) before anything is changed.
    public func resume(from url: URL) throws {
        _ = try InputFile.requireRegular(url.path, what: "checkpoint")
        let c = try Checkpoint.read(url)
        guard c.modelName == model.modelName else {
            throw CheckpointError.mismatch(file: url.path, what: "checkpoint is for \(c.modelName), the config builds \(model.modelName)")
        }
        guard c.classes.isEmpty || c.classes == trainData.classes else {
            throw CheckpointError.mismatch(file: url.path, what: "checkpoint classes \(c.classes) differ from the dataset's \(trainData.classes)")
        }
        func counter(_ key: String, default d: Int, in range: ClosedRange<Int>) throws -> Int {
            guard let values = c.metrics[key] else { return d }
            guard values.count == 1, let v = values.first, v.isFinite, v == v.rounded(), let n = Int(exactly: v), range.contains(n) else {
                throw CheckpointError.corrupt(file: url.path, key: "/metrics \(key) = \(values) (expected one whole number in \(range))")
            }
            return n
        }
        // A mid-epoch position only means something with the same batches per epoch.
        let step = try counter("_trainer/step_in_epoch", default: 0, in: 0...max(trainData.batchCount - 1, 0))
        let best = try counter("_trainer/best_epoch", default: -1, in: -1...max(c.epoch - 1, -1))
        var restoredHistory: [String: [Double]] = [:]
        for (key, series) in c.metrics where !key.hasPrefix("_trainer") {
            guard series.count <= c.epoch else {
                throw CheckpointError.corrupt(file: url.path, key: "/metrics \(key) (\(series.count) values for \(c.epoch) epochs)")
            }
            // Checkpoints written after an earlier resume could miss the first rows of keys that
            // appeared after it; the missing rows are the earliest.
            restoredHistory[key] = Array(repeating: .nan, count: c.epoch - series.count) + series
        }
        let dropout = try c.rngStates["dropout"].map { try RandomGenerator(state: $0) }

        epoch = c.epoch
        globalStep = c.globalStep
        bestMetric = c.bestMetric
        // The file holds the groups of the epoch that was running when it was written: the one
        // before `epoch` for a checkpoint from an epoch's end. A switch of fine-tuning mode at
        // `epoch` then happens in fit(), carrying the state over as in the run that never stopped.
        try applyFineTuning(forEpoch: step > 0 ? epoch : max(epoch - 1, 0))
        try Checkpoint.restore(from: url, model: model, optimizer: optimizer, scheduler: scheduler, ema: ema)
        stepInEpoch = step
        bestEpoch = best
        history = restoredHistory
        if let dropout { model.randomSource.generator = dropout }
        if let s = c.rngStates["mixup"], let mixer { try mixer.restoreRandomState(s) }
    }
}
