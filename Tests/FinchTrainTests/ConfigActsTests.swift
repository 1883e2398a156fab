import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchTrain

/// A teacher that records the input shapes it is run on (pooled input → linear head).
final class ShapeRecordingTeacher: ImageClassifier {
    var seen: [[Int]] = []
    let pool = GlobalAvgPool()
    let classifier: Linear

    init(numClasses: Int) {
        classifier = Linear(3, numClasses)
        super.init(modelName: "recorder", numClasses: numClasses, pretrainedConfig: .imagenet)
        register("classifier", classifier)
    }
    override func forwardFeatures(_ x: Tensor) -> Tensor { seen.append(x.shape); return x }
    override func forwardHead(_ f: Tensor, preLogits: Bool) -> Tensor { preLogits ? pool(f) : classifier(pool(f)) }
}

/// Keys that used to be read and ignored now act: `distill.teacher.image_size`, `log_interval`;
/// and the monitored metric names are the ones the trainer records.
final class ConfigActsTests: XCTestCase {
    func config(_ extra: String, mixup: String = "{label_smoothing: 0.1}") throws -> TrainConfig {
        try TrainConfig.parse("""
        seed: 3
        data: {root: unused, batch_size: 8}
        model: {name: tiny}
        optimizer: {name: adamw, lr: 0.01}
        schedule: {name: cosine, epochs: 1, warmup_epochs: 0}
        mixup: \(mixup)
        \(extra)
        """, source: "acts.yaml")
    }

    func trainer(_ c: TrainConfig, teacher: ImageClassifier? = nil, ema: Bool = false) throws -> Trainer {
        let model = TinyClassifier(numClasses: 3)
        var rng = RandomGenerator(seed: 1)
        model.initializeWeights(using: &rng)
        let x = Tensor.normal([24, 3, 8, 8], using: &rng), y = (0..<24).map { $0 % 3 }
        let classes = ["r", "g", "b"]
        let mixer = c.mixup.enabled ? MixupMixer(config: c.mixup, numClasses: 3, seed: 2) : nil
        let t = try Trainer(config: c, model: model, train: InMemoryBatches(images: x, labels: y, classes: classes, batchSize: 8),
                            val: InMemoryBatches(images: x, labels: y, classes: classes, batchSize: 8), teacher: teacher, mixer: mixer,
                            emaModel: ema ? TinyClassifier(numClasses: 3) : nil)
        t.progress = ProgressReporter(isTerminal: false)
        return t
    }

    func testTeacherSeesItsOwnImageSize() throws {
        let resized = Distillation.teacherInput(Tensor.zeros([2, 3, 8, 8]), from: ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
                                                to: ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]), imageSize: 12)
        XCTAssertEqual(resized.shape, [2, 3, 12, 12])
        // Bilinear on a constant image keeps the constant (after renormalisation 1 → (1·0.5 + 0.5 − 0)/1 = 1).
        let c = Distillation.teacherInput(Tensor(repeating: 1, shape: [1, 3, 4, 4]), from: ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
                                          to: ([0, 0, 0], [1, 1, 1]), imageSize: 6)
        XCTAssertTrue(c.scalars.allSatisfy { abs($0 - 1) < 1e-6 })

        for (extra, expected) in [("image_size: 12, view: resized", [8, 3, 12, 12]), ("num_classes: 3", [8, 3, 8, 8])] {
            let teacher = ShapeRecordingTeacher(numClasses: 3)
            let t = try trainer(try config("distill: {teacher: {name: recorder, checkpoint: unused.h5, \(extra)}}"), teacher: teacher)
            try t.fit()
            XCTAssertEqual(teacher.seen.count, 3, "one teacher forward per training batch")
            XCTAssertTrue(teacher.seen.allSatisfy { $0 == expected }, "\(extra): \(teacher.seen)")
        }
    }

    func testTeacherOutputShapeIsProbedBeforeTraining() throws {
        XCTAssertNoThrow(try TrainingSetup.checkTeacherOutput(ShapeRecordingTeacher(numClasses: 3), imageSize: 16, numClasses: 3, source: "s"))
        XCTAssertThrowsError(try TrainingSetup.checkTeacherOutput(ShapeRecordingTeacher(numClasses: 1000), imageSize: 16, numClasses: 5, source: "s")) {
            XCTAssertTrue("\($0)".contains("'distill.teacher': at 16 px the teacher outputs shape [1, 1000], the student needs [N, 5]"), "\($0)")
        }
    }

    func testLogIntervalPrintsPlainStepLines() throws {
        var lines: [String] = []
        let t = try trainer(try config("log_interval: 2"))
        t.callbacks.append(StepLog(interval: t.config.logInterval) { lines.append($0) })
        try t.fit()
        // 3 batches an epoch, one epoch: a line after batch 2 only.
        XCTAssertEqual(lines.count, 1, "\(lines)")
        let line = try XCTUnwrap(lines.first)
        XCTAssertTrue(line.hasPrefix("epoch 1/1 step 2/3 (global 2) loss "), line)
        XCTAssertTrue(line.contains(" lr 1.00e-02 ") && line.hasSuffix(" img/s"), line)

        var every: [String] = []
        let t1 = try trainer(try config("log_interval: 1"))
        t1.callbacks.append(StepLog(interval: 1) { every.append($0) })
        try t1.fit()
        XCTAssertEqual(every.map { $0.components(separatedBy: " (").first! }, ["epoch 1/1 step 1/3", "epoch 1/1 step 2/3", "epoch 1/1 step 3/3"])
    }

    /// What the config says a run records is what the trainer writes into its epoch records.
    func testProducedMetricsAreTheTrainersNames() throws {
        for (mixup, ema) in [("{label_smoothing: 0.1}", true), ("{mixup_alpha: 0.2}", false)] {
            let c = try config(ema ? "ema: {decay: 0.9}" : "", mixup: mixup)
            let record = try XCTUnwrap(try trainer(c, ema: ema).fit().first)
            let recorded = Set(record.values.keys.filter { !$0.hasPrefix("lr/") })
            XCTAssertEqual(recorded, Set(c.producedMetrics), "mixup \(mixup), ema \(ema)")
        }
    }
}
