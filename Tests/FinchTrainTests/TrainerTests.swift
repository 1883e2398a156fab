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

    func config(_ extra: String = "", epochs: Int = 4, mixup: String = "{label_smoothing: 0.1}") throws -> TrainConfig {
        try TrainConfig.parse("""
        experiment: tiny
        seed: 3
        data: {root: unused, batch_size: 8}
        model: {name: tiny, drop_rate: 0.0}
        optimizer: {name: adamw, lr: 0.01, weight_decay: 0.01}
        schedule: {name: cosine, epochs: \(epochs), warmup_epochs: 1, warmup_lr: 0.001}
        mixup: \(mixup)
        checkpoint: {keep: 2}
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
}
