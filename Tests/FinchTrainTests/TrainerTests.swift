import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchIO
@testable import FinchTrain

/// A small conv classifier with a timm-like head, registered under the name "tiny".
final class TinyClassifier: ImageClassifier {
    let convStem = Conv2d(3, 8, kernelSize: 3, stride: 2, bias: false)
    let bn1 = BatchNorm2d(8, activation: .relu)
    let pool = GlobalAvgPool()
    var classifier: Linear

    init(numClasses: Int) {
        classifier = Linear(8, numClasses)
        super.init(modelName: "tiny", numClasses: numClasses, pretrainedConfig: .imagenet)
        register("conv_stem", convStem)
        register("bn1", bn1)
        register("classifier", classifier)
    }

    override func forwardFeatures(_ x: Tensor) -> Tensor { bn1(convStem(x)) }
    override func forwardHead(_ f: Tensor, preLogits: Bool) -> Tensor { preLogits ? pool(f) : classifier(pool(f)) }
    override func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        classifier = Linear(8, numClasses)
        classifier.resetParameters(using: &rng)
        register("classifier", classifier)
        setNumClasses(numClasses)
    }
    override func initializeWeights(using rng: inout RandomGenerator) {
        Init.kaimingNormalFanOut(convStem.weight, using: &rng)
        classifier.resetParameters(using: &rng)
    }
}

final class TrainerTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Three classes told apart by which colour channel is bright, plus noise.
    func data(_ n: Int, seed: UInt64) -> (Tensor, [Int]) {
        var rng = RandomGenerator(seed: seed)
        let x = Tensor.normal([n, 3, 8, 8], std: 0.5, using: &rng)
        let labels = (0..<n).map { $0 % 3 }
        let p = x.basePointer
        for (i, y) in labels.enumerated() { for k in 0..<64 { p[(i * 3 + y) * 64 + k] += 1.5 } }
        return (x, labels)
    }

    func config(_ extra: String = "", epochs: Int = 4, mixup: String = "{label_smoothing: 0.1}",
                checkpoint: String = "{keep: 2}") throws -> TrainConfig {
        try TrainConfig.parse("""
        experiment: tiny
        seed: 3
        data: {root: unused, batch_size: 8}
        model: {name: tiny, drop_rate: 0.0}
        optimizer: {name: adamw, lr: 0.01, weight_decay: 0.01}
        schedule: {name: cosine, epochs: \(epochs), warmup_epochs: 1, warmup_lr: 0.001}
        mixup: \(mixup)
        checkpoint: \(checkpoint)
        \(extra)
        """, source: "test.yaml")
    }

    func makeTrainer(_ c: TrainConfig, teacher: ImageClassifier? = nil) throws -> Trainer {
        let model = TinyClassifier(numClasses: 3)
        var rng = RandomGenerator(seed: 11)
        model.initializeWeights(using: &rng)
        let (x, y) = data(48, seed: 1), (vx, vy) = data(24, seed: 2)
        let classes = ["red", "green", "blue"]
        let mixer = c.mixup.enabled ? MixupMixer(config: c.mixup, numClasses: 3, seed: 21) : nil
        let t = try Trainer(config: c, model: model, train: InMemoryBatches(images: x, labels: y, classes: classes, batchSize: 8, shuffleSeed: 5),
                            val: InMemoryBatches(images: vx, labels: vy, classes: classes, batchSize: 8), teacher: teacher, mixer: mixer)
        t.progress = ProgressReporter(isTerminal: false)
        t.checkpointDirectory = dir
        return t
    }

    func testTrainsWritesRunFilesAndCheckpoints() throws {
        let t = try makeTrainer(try config())
        let log = try RunLog(directory: dir.appendingPathComponent("run"), configYAML: t.config.resolvedYAML, classes: ["red", "green", "blue"])
        t.callbacks.append(log)
        let records = try t.fit()
        XCTAssertEqual(records.count, 4)
        XCTAssertGreaterThan(records.last!.values["val/top1"]!, 0.75, "separable data should be learnt (chance is 1/3)")
        XCTAssertLessThan(records.last!.values["train/loss"]!, records.first!.values["train/loss"]!)
        for f in ["config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "curves.svg", "confusion.svg", "confusion.txt"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/\(f)").path), f)
        }
        let jsonl = try String(contentsOf: dir.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(jsonl.split(separator: "\n").count, 4)
        XCTAssertTrue(jsonl.contains("\"val/per_class_accuracy\""))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".h5") }.sorted()
        XCTAssertEqual(files, ["best.h5", "epoch-3.h5", "epoch-4.h5", "last.h5"], "keep: 2 rotates epoch files")
        let ck = try Checkpoint.read(dir.appendingPathComponent("last.h5"))
        XCTAssertEqual(ck.epoch, 4)
        XCTAssertEqual(ck.classes, ["red", "green", "blue"])
        XCTAssertEqual(ck.metrics["val/top1"]?.count, 4)
        // Warmup then cosine as timm counts it (warmup epochs are part of the 4): epoch 1 at warmup_lr,
        // epoch 2 at 0.01·½(1 + cos(π·1/4)).
        XCTAssertEqual(records[0].values["lr/decay"]!, 0.001, accuracy: 1e-9)
        XCTAssertEqual(records[1].values["lr/decay"]!, 0.01 * 0.5 * (1 + cos(Double.pi / 4)), accuracy: 1e-8)
    }

    /// Four epochs straight and 2 + resume (a new trainer, state only from last.h5) + 2 agree bit for bit.
    func testResumeIsExact() throws {
        try checkResume(mixup: "{label_smoothing: 0.1}")
    }

    /// The same with MixUp/CutMix switching per element: the mixer's stream is checkpointed too.
    func testResumeIsExactWithMixupAndCutMix() throws {
        try checkResume(mixup: "{mixup_alpha: 0.8, cutmix_alpha: 1.0, mode: elem, label_smoothing: 0.1}")
    }

    func checkResume(mixup: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let straight = try makeTrainer(try config(mixup: mixup))
        try straight.fit()
        let straightWeights = straight.model.stateDict()

        let half = try makeTrainer(try config(epochs: 4, mixup: mixup))
        half.checkpointDirectory = dir.appendingPathComponent("half")
        try FileManager.default.createDirectory(at: half.checkpointDirectory!, withIntermediateDirectories: true)
        Trainer.stopRequest.store(false, ordering: .relaxed)
        final class StopAfter: TrainerCallback {
            let epochs: Int
            init(_ e: Int) { epochs = e }
            func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
                if record.epoch + 1 == epochs { Trainer.stopRequest.store(true, ordering: .relaxed) }
            }
        }
        half.callbacks.append(StopAfter(2))
        try half.fit()
        XCTAssertEqual(half.epoch, 2)
        Trainer.stopRequest.store(false, ordering: .relaxed)

        let resumed = try makeTrainer(try config(mixup: mixup))
        try resumed.resume(from: dir.appendingPathComponent("half/last.h5"))
        XCTAssertEqual(resumed.epoch, 2)
        try resumed.fit()
        for ((n, a), (_, b)) in zip(straightWeights, resumed.model.stateDict()) {
            if case .float(let x) = a, case .float(let y) = b { XCTAssertEqual(x.scalars, y.scalars, n, file: file, line: line) }
            if case .int64(let x, _) = a, case .int64(let y, _) = b { XCTAssertEqual(x, y, n, file: file, line: line) }
        }
        XCTAssertEqual(straight.history["val/top1"]!, resumed.history["val/top1"]!, file: file, line: line)
        XCTAssertEqual(straight.history["train/loss"]!, resumed.history["train/loss"]!, file: file, line: line)
    }

    func testHeadOnlyTrainsOnlyTheClassifierAndKeepsBackboneStatistics() throws {
        let t = try makeTrainer(try config("finetune: {mode: head}", epochs: 2))
        let stem = t.model.stateDict().first { $0.name == "conv_stem.weight" }!
        guard case .float(let w) = stem.value else { return XCTFail() }
        let before = w.scalars
        let meanBefore = (t.model as! TinyClassifier).bn1.runningMean.scalars
        try t.fit()
        XCTAssertEqual(w.scalars, before, "a frozen backbone must not change")
        XCTAssertEqual((t.model as! TinyClassifier).bn1.runningMean.scalars, meanBefore, "frozen BatchNorm keeps its statistics")
        XCTAssertEqual((t.model as! TinyClassifier).bn1.numBatchesTracked.values, [0])
        XCTAssertEqual(t.optimizer.groups.flatMap { $0.parameters.map(\.name) }.sorted(), ["classifier.bias", "classifier.weight"])
        XCTAssertEqual(t.model.trainableParameterCount, 8 * 3 + 3)
    }

    func testNonFiniteLossStopsWithTheStepAndKeepsTheLastGoodCheckpoint() throws {
        let t = try makeTrainer(try config(epochs: 3))
        final class Poison: TrainerCallback {
            func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
                // Corrupt a weight after the first epoch so the next forward pass yields NaN.
                (trainer.model as! TinyClassifier).classifier.weight.basePointer[0] = .nan
            }
        }
        t.callbacks.append(Poison())
        XCTAssertThrowsError(try t.fit()) { e in
            XCTAssertTrue("\(e)".contains("the loss became NaN at epoch 2, global step 6"), "\(e)")
        }
        let ck = try Checkpoint.read(dir.appendingPathComponent("last.h5"))
        XCTAssertEqual(ck.epoch, 1, "last.h5 still holds the last good epoch")
    }

    func testEarlyStoppingAndDistillation() throws {
        // A teacher that already knows the task; the student distils from it.
        let teacherTrainer = try makeTrainer(try config(epochs: 3))
        try teacherTrainer.fit()
        let c = try config("distill: {teacher: {name: tiny, checkpoint: unused.h5}, alpha: 0.5, temperature: 2.0}\nearly_stopping: {monitor: val/top1, patience: 1}", epochs: 6)
        let t = try makeTrainer(c, teacher: teacherTrainer.model)
        t.checkpointDirectory = nil
        let records = try t.fit()
        XCTAssertLessThan(records.count, 6, "early stopping ends the run once val/top1 stops improving")
        XCTAssertGreaterThan(records.last!.values["val/top1"]!, 0.8)

        // The loss terms themselves, against hand-computed values.
        let s = Tensor([2, 0, -1], shape: [1, 3]), te = Tensor([1, 1, 0], shape: [1, 3])
        let task = Loss.crossEntropy(s, labels: [0])
        let soft = Distillation.loss(task: task, student: s, teacher: te, kind: .soft, alpha: 0.5, temperature: 2)
        let kd = Loss.klDivergence((s / 2).logSoftmax(axis: 1), target: (te / 2).softmax(axis: 1)).item
        XCTAssertEqual(soft.item, 0.5 * task.item + 0.5 * 4 * kd, accuracy: 1e-6)
        let hard = Distillation.loss(task: task, student: s, teacher: te, kind: .hard, alpha: 0.5, temperature: 2)
        XCTAssertEqual(hard.item, 0.5 * task.item + 0.5 * Loss.crossEntropy(s, labels: [0]).item, accuracy: 1e-6)
        let y = Distillation.renormalize(Tensor(repeating: 1, shape: [1, 3, 1, 1]), from: ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
                                         to: ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        XCTAssertEqual(y.scalars[0], (1 * 0.5 + 0.5 - 0.485) / 0.229, accuracy: 1e-5)
    }

    /// Every float in every checkpoint file in `dir`, by file and dataset, must be finite.
    func assertAllCheckpointsFinite(file: StaticString = #filePath, line: UInt = #line) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".h5") }
        XCTAssertFalse(files.isEmpty, file: file, line: line)
        for f in files {
            let h = try HDF5File(reading: dir.appendingPathComponent(f))
            func walk(_ g: HDF5Group, _ prefix: String) throws {
                for n in try g.memberNames() {
                    if g.isGroup(n) { try walk(try g.group(n), prefix + n + "/"); continue }
                    guard try g.datasetTypeName(n).hasPrefix("float32") else { continue }
                    XCTAssertTrue(try g.readTensor(n).scalars.allSatisfy(\.isFinite), "\(f): \(prefix)\(n)", file: file, line: line)
                }
            }
            for top in ["model", "optimizer", "ema"] where h.root.isGroup(top) { try walk(try h.root.group(top), top + "/") }
        }
    }

    func floats(_ m: Module) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (n, v) in m.stateDict() { if case .float(let t) = v { out[n] = t.scalars } }
        return out
    }

    /// A weight poisoned by the last step of epoch 2 (a finite loss, so the per-step loss check
    /// cannot see it): the run stops before evaluating or writing, every checkpoint on disk is
    /// finite, and last.h5 is exactly the state after epoch 1.
    func testPoisonedWeightNeverReachesACheckpoint() throws {
        let t = try makeTrainer(try config(epochs: 3))
        final class Poison: TrainerCallback {
            var afterEpoch1: [String: [Float]] = [:]
            let snapshot: (Trainer) -> [String: [Float]]
            init(_ s: @escaping (Trainer) -> [String: [Float]]) { snapshot = s }
            func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
                if trainer.globalStep == 12 { (trainer.model as! TinyClassifier).classifier.weight.basePointer[0] = .nan }
            }
            func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
                if record.epoch == 0 { afterEpoch1 = snapshot(trainer) }
            }
        }
        let poison = Poison { [unowned self] in self.floats($0.model) }
        t.callbacks.append(poison)
        XCTAssertEqual(t.trainData.batchCount, 6)
        XCTAssertThrowsError(try t.fit()) { e in
            XCTAssertEqual("\(e)", "training stopped: model parameter classifier.weight became NaN or infinite in epoch 2, by global step 12; the last good checkpoint is kept")
        }
        XCTAssertEqual(t.records.count, 1, "the poisoned epoch is neither evaluated nor recorded")
        try assertAllCheckpointsFinite()
        let last = dir.appendingPathComponent("last.h5")
        XCTAssertEqual(try Checkpoint.read(last).epoch, 1)
        let fresh = TinyClassifier(numClasses: 3)
        try Checkpoint.restore(from: last, model: fresh, optimizer: nil, scheduler: nil, ema: nil)
        XCTAssertEqual(floats(fresh), poison.afterEpoch1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("epoch-2.h5").path))
    }

    /// With a checkpoint after every step, a poisoned AdamW moment turns the weights to NaN in
    /// the next update (the loss of that step is still finite); that step is not written and
    /// last.h5 stays at the step before.
    func testPoisonedOptimizerStateIsNotCheckpointedMidEpoch() throws {
        let t = try makeTrainer(try config(epochs: 3, checkpoint: "{every_steps: 1, keep: 0}"))
        final class Poison: TrainerCallback {
            func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
                guard trainer.globalStep == 8, let a = trainer.optimizer as? AdamW else { return }
                a.state(for: (trainer.model as! TinyClassifier).classifier.weight)!.expAvg.basePointer[0] = .nan
            }
        }
        t.callbacks.append(Poison())
        XCTAssertThrowsError(try t.fit()) { e in
            XCTAssertTrue("\(e)".contains("became NaN or infinite in epoch 2, by global step 9; the last good checkpoint is kept"), "\(e)")
        }
        try assertAllCheckpointsFinite()
        XCTAssertEqual(try Checkpoint.read(dir.appendingPathComponent("last.h5")).globalStep, 8)
    }

    /// Validation images far outside any normalised range overflow to infinite and NaN logits
    /// (NaN images alone would be zeroed by the ReLU), whose arg-max still makes a finite top-1:
    /// that value must not count as an improvement (no best.h5), and early stopping counts the
    /// epoch as one without improvement.
    func testNonFiniteValidationNeverCountsAsImprovement() throws {
        final class NaNFirstPass: BatchSource {
            let inner: BatchSource
            var passes = 0
            init(_ inner: BatchSource) { self.inner = inner }
            var classes: [String] { inner.classes }
            var batchCount: Int { inner.batchCount }
            func batches(epoch: Int, startingAt start: Int) throws -> AnyIterator<Result<Batch, Error>> {
                passes += 1
                let it = try inner.batches(epoch: epoch, startingAt: start), poison = passes == 1
                return AnyIterator {
                    it.next().map { r in r.map { b in
                        guard poison else { return b }
                        return Batch(images: Tensor(repeating: 3e38, shape: b.images.shape), labels: b.labels)
                    } }
                }
            }
        }
        /// A tiny run whose first validation pass sees NaN logits.
        func poisonedTrainer(_ c: TrainConfig) throws -> Trainer {
            let model = TinyClassifier(numClasses: 3)
            var rng = RandomGenerator(seed: 11)
            model.initializeWeights(using: &rng)
            let (x, y) = data(48, seed: 1), (vx, vy) = data(24, seed: 2)
            let classes = ["red", "green", "blue"]
            let t = try Trainer(config: c, model: model, train: InMemoryBatches(images: x, labels: y, classes: classes, batchSize: 8, shuffleSeed: 5),
                                val: NaNFirstPass(InMemoryBatches(images: vx, labels: vy, classes: classes, batchSize: 8)))
            t.progress = ProgressReporter(isTerminal: false)
            return t
        }
        // Both directions: an accuracy (max) and a loss (min); `mode: min` on an accuracy is refused by the config.
        for (monitor, mode) in [("val/top1", "max"), ("val/loss", "min")] {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("best.h5"))
            let t = try poisonedTrainer(try config(epochs: 2, checkpoint: "{keep: 0, monitor: \(monitor), mode: \(mode)}"))
            t.checkpointDirectory = dir
            final class AfterFirst: TrainerCallback {
                var best = 0, hadBestFile = true, record: EpochRecord?
                let dir: URL
                init(_ d: URL) { dir = d }
                func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
                    guard record.epoch == 0 else { return }
                    best = trainer.bestEpoch
                    hadBestFile = FileManager.default.fileExists(atPath: dir.appendingPathComponent("best.h5").path)
                    self.record = record
                }
            }
            let probe = AfterFirst(dir)
            t.callbacks.append(probe)
            try t.fit()
            XCTAssertFalse(probe.record!.values["val/loss"]!.isFinite, mode)
            XCTAssertTrue(probe.record!.values["val/top1"]!.isFinite, "the hazard: a finite top-1 from NaN logits (\(mode))")
            XCTAssertEqual(probe.best, -1, mode)
            XCTAssertFalse(probe.hadBestFile, mode)
            XCTAssertEqual(t.bestEpoch, 1, "the first trustworthy epoch is the best so far (\(mode))")
        }

        // Early stopping: the NaN epoch is one without improvement, so patience 1 ends the run there.
        XCTAssertEqual(try poisonedTrainer(try config("early_stopping: {monitor: val/top1, patience: 1}", epochs: 4)).fit().count, 1)
    }

    /// Early stopping counts over the whole history, so a resumed run stops where the straight
    /// run stops. The learning rate is the monitored value because it is exactly reproducible:
    /// it rises for two epochs (warmup, then the cosine peak) and falls after.
    func testEarlyStoppingCountsAcrossAResume() throws {
        let extra = "early_stopping: {monitor: lr/decay, mode: max, patience: 2}"
        let straight = try makeTrainer(try config(extra, epochs: 6))
        straight.checkpointDirectory = nil
        try straight.fit()
        XCTAssertEqual(straight.epoch, 4, "epochs 3 and 4 lower the rate")

        let half = try makeTrainer(try config(extra, epochs: 6))
        final class StopAfter3: TrainerCallback {
            func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
                if record.epoch == 2 { Trainer.stopRequest.store(true, ordering: .relaxed) }
            }
        }
        half.callbacks.append(StopAfter3())
        try half.fit()
        Trainer.stopRequest.store(false, ordering: .relaxed)
        XCTAssertEqual(half.epoch, 3)
        let resumed = try makeTrainer(try config(extra, epochs: 6))
        try resumed.resume(from: dir.appendingPathComponent("last.h5"))
        try resumed.fit()
        XCTAssertEqual(resumed.epoch, 4)
    }

    /// A checkpoint write that fails (here: the destination is a folder) stops the run with the
    /// file named; last.h5 is written after best.h5 and epoch-N.h5, so it still holds the
    /// previous epoch, and no run files are written for the failed epoch.
    func testFailedCheckpointWriteKeepsThePreviousLastAndWritesNothingAfter() throws {
        for blocked in ["epoch-2.h5", "best.h5"] {
            try? FileManager.default.removeItem(at: dir)
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(blocked + "/occupied"), withIntermediateDirectories: true)
            let t = try makeTrainer(try config(epochs: 3))
            let log = try RunLog(directory: dir.appendingPathComponent("run"), configYAML: t.config.resolvedYAML, classes: ["red", "green", "blue"])
            t.callbacks.append(log)
            XCTAssertThrowsError(try t.fit(), blocked) {
                XCTAssertTrue("\($0)".hasPrefix("training stopped: could not write the checkpoint \(dir.appendingPathComponent(blocked).path) ("), "\($0)")
                XCTAssertTrue("\($0)".hasSuffix("); the checkpoints written before it are unchanged"), "\($0)")
            }
            let last = dir.appendingPathComponent("last.h5")
            if blocked == "best.h5" {
                // Epoch 1 always improves on nothing, so its best.h5 write fails before last.h5.
                XCTAssertFalse(FileManager.default.fileExists(atPath: last.path))
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/metrics.jsonl").path))
            } else {
                XCTAssertEqual(try Checkpoint.read(last).epoch, 1)
                let jsonl = try String(contentsOf: dir.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
                XCTAssertEqual(jsonl.split(separator: "\n").count, 1)
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
            XCTAssertEqual(leftovers, [], blocked)
        }
    }
}
