import XCTest
import Foundation
import Logging
import FinchTestSupport
import FinchTensor
import FinchNN
@testable import FinchTrain

/// What a run prints and plots says what the config set: the epoch line's rate is the base rate
/// as scheduled (not the head group's), the group table is printed once at the start, top-5
/// appears only with more than 5 classes, and the plots have rounded ticks, the per-step loss and
/// the learning rates.
final class EpochOutputTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-output-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    func trainer(_ optimizer: String, schedule: String, classes: Int = 3) throws -> Trainer {
        let c = try TrainConfig.parse("""
            experiment: out
            seed: 3
            data: {root: unused, batch_size: 4}
            model: {name: tiny}
            optimizer: \(optimizer)
            schedule: \(schedule)
            """, source: "out.yaml")
        let model = TinyClassifier(numClasses: classes)
        var rng = RandomGenerator(seed: 1)
        model.initializeWeights(using: &rng)
        let x = Tensor.normal([8, 3, 8, 8], using: &rng), y = (0..<8).map { $0 % classes }
        let names = (0..<classes).map { "c\($0)" }
        let t = try Trainer(config: c, model: model, train: InMemoryBatches(images: x, labels: y, classes: names, batchSize: 4),
                            val: InMemoryBatches(images: x, labels: y, classes: names, batchSize: 4))
        t.progress = ProgressReporter(isTerminal: false)
        return t
    }

    /// The case: lr 3.0e-4 with a 10× head printed "lr 3.00e-03".
    func testEpochLineShowsTheBaseRateNotTheHeadGroups() throws {
        let t = try trainer("{name: adamw, lr: 3.0e-4, layer_lr_multiplier: {classifier: 10}}", schedule: "{name: cosine, epochs: 2, warmup_epochs: 0}")
        let lines = try captured { try t.fit() }
        let record = try XCTUnwrap(t.records.first)
        XCTAssertEqual(try XCTUnwrap(record.values["lr/decay:classifier"]), 3e-3, accuracy: 1e-9, "the head's group runs at 10×")
        XCTAssertEqual(lines.count, 2, "\(lines)")
        XCTAssertTrue(lines[0].hasPrefix("epoch 1/2  ") && lines[0].contains("  lr 3.00e-04  "), lines[0])
        // Epoch 2 of a 2-epoch cosine: half-way down, 3e-4 · (1 + cos(π/2)) / 2.
        XCTAssertTrue(lines[1].contains("  lr 1.50e-04  "), lines[1])
        XCTAssertFalse(lines.joined().contains("3.00e-03"), "\(lines)")
    }

    /// During warmup the base rate is the warmup's; a lower rate for the stem does not change it.
    func testBaseRateFollowsWarmupAndIgnoresMultipliers() throws {
        let t = try trainer("{name: sgd, lr: 0.1, layer_lr_multiplier: {conv_stem: 0.1}}", schedule: "{name: cosine, epochs: 2, warmup_epochs: 1, warmup_lr: 1.0e-3}")
        XCTAssertEqual(t.baseLR, 1e-3, accuracy: 1e-12)
        let lines = try captured { try t.fit() }
        XCTAssertTrue(lines[0].contains("  lr 1.00e-03  "), lines[0])
        // Epoch 2 (t = 1 after one warmup epoch): 0.1 · (1 + cos(π/2)) / 2.
        XCTAssertTrue(lines[1].contains("  lr 5.00e-02  "), lines[1])
        XCTAssertEqual(try XCTUnwrap(t.records[1].values["lr/decay:conv_stem"]), 5e-3, accuracy: 1e-9, "the stem runs at 0.1×")
    }

    func testTopFiveOnlyWithMoreThanFiveClasses() throws {
        let values = ["train/loss": 1.0, "val/loss": 1.0, "val/top1": 0.5, "val/top5": 1.0, "train/img_per_s": 10, "epoch_seconds": 1]
        let r = EpochRecord(epoch: 0, values: values, perClassAccuracy: [], confusion: [])
        XCTAssertFalse(Trainer.summaryLine(r, epochs: 1, baseLR: 1e-3, classes: 5).contains("top5"))
        XCTAssertTrue(Trainer.summaryLine(r, epochs: 1, baseLR: 1e-3, classes: 6).contains("  top5 1.000  "))
        XCTAssertEqual(Trainer.summaryLine(r, epochs: 1, baseLR: 1e-3, classes: 5),
                       "epoch 1/1  train loss 1.0000  val loss 1.0000  val top1 0.500  10 img/s  lr 1.00e-03  1.0s")

        // The plot too: no top-5 series for 5 classes or fewer.
        for (classes, plotted) in [(3, false), (6, true)] {
            let t = try trainer("{name: adamw, lr: 1.0e-3}", schedule: "{name: cosine, epochs: 1, warmup_epochs: 0}", classes: classes)
            let run = base.appendingPathComponent("run-\(classes)")
            t.callbacks.append(try RunLog(directory: run, configYAML: "a: 1\n", classes: (0..<classes).map { "c\($0)" }))
            _ = try captured { try t.fit() }
            let svg = try String(contentsOf: run.appendingPathComponent("curves.svg"), encoding: .utf8)
            XCTAssertEqual(svg.contains("val top-5"), plotted, "\(classes) classes")
        }
    }

    /// The table `ParameterGrouping.describe` makes, once, as a record at set-up.
    func testParameterGroupTableIsPrintedOnceAtStart() throws {
        try TinyImageFolder.make(under: base)
        let c = try TrainConfig.parse("""
            experiment: tiny
            data: {root: data, image_size: 32, batch_size: 2}
            model: {name: mobilenetv3_small_100}
            optimizer: {name: adamw, lr: 1.0e-3, layer_lr_multiplier: {classifier: 10}}
            schedule: {epochs: 1, warmup_epochs: 0}
            logging: {tensorboard: false}
            """, source: "tiny.yaml")
        var setup: TrainingSetup?
        let setupLines = try captured { setup = try TrainingSetup(config: c, baseDirectory: base) }
        let tables = setupLines.filter { $0.hasPrefix("parameter groups") }
        XCTAssertEqual(tables.count, 1, "\(setupLines)")
        let table = try XCTUnwrap(tables.first).split(separator: "\n").map(String.init)
        XCTAssertEqual(table.first, "parameter groups (adamw, base lr 1.00e-03):")
        XCTAssertTrue(table[1].hasPrefix("group "), table[1])
        let groups = try XCTUnwrap(setup).trainer.optimizer.groups
        XCTAssertEqual(table.count, 2 + groups.count)
        for (line, g) in zip(table.dropFirst(2), groups) { XCTAssertTrue(line.hasPrefix(g.name + " "), line) }
        let trainLines = try captured { try setup?.trainer.fit() }
        XCTAssertFalse(trainLines.contains { $0.hasPrefix("parameter groups") }, "printed once, at the start")
    }

    /// Ticks at 1, 2 or 5 × 10ᵏ, covering the data, labelled with the decimals the step needs.
    func testTicksAreNiceNumbers() {
        let accuracy = Plots.Ticks(lo: 0.13, hi: 0.87)
        XCTAssertEqual(accuracy.values.map(accuracy.label), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let loss = Plots.Ticks(lo: 0.4137, hi: 1.6094)
        XCTAssertEqual(loss.values.map(loss.label), ["0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6", "1.8"])
        let lr = Plots.Ticks(lo: 1e-5, hi: 3e-4)
        XCTAssertEqual(lr.values.map(lr.label), ["0", "1e-04", "2e-04", "3e-04"])
        let flat = Plots.Ticks(lo: 2, hi: 2)
        XCTAssertTrue(flat.lo < 2 && flat.hi > 2, "\(flat.values)")
        let big = Plots.Ticks(lo: 0, hi: 1234)
        XCTAssertEqual(big.values.map(big.label), ["0", "500", "1000", "1500"])
    }

    /// curves.svg holds the per-step loss, the accuracy and the learning-rate charts, with only
    /// rounded tick labels on the value axes.
    func testCurvesHaveStepLossAndLearningRate() throws {
        let t = try trainer("{name: adamw, lr: 1.0e-3}", schedule: "{name: cosine, epochs: 3, warmup_epochs: 1, warmup_lr: 1.0e-4}")
        let run = base.appendingPathComponent("run")
        t.callbacks.append(try RunLog(directory: run, configYAML: "a: 1\n", classes: ["c0", "c1", "c2"]))
        _ = try captured { try t.fit() }
        let svg = try String(contentsOf: run.appendingPathComponent("curves.svg"), encoding: .utf8)
        for needle in ["out: loss", "out: accuracy", "out: learning rate", "train loss (steps)", "base lr (steps)", ">decay<", ">no_decay<"] {
            XCTAssertTrue(svg.contains(needle), needle)
        }
        // Value-axis labels (right-aligned texts) are multiples of a 1/2/5 step: few digits.
        let labels = svg.components(separatedBy: "text-anchor=\"end\" font-size=\"11\">").dropFirst().map { String($0.prefix { $0 != "<" }) }
        XCTAssertFalse(labels.isEmpty)
        for l in labels { XCTAssertTrue(l.count <= 5, "tick label \(l)") }
        XCTAssertEqual(Plots.binned(x: Array(0..<1000).map(Double.init), values: Array(repeating: 2, count: 1000), limit: 10).values,
                       Array(repeating: 2, count: 10))
    }

    /// The `finch.train` messages `body` logs (at every level).
    func captured(_ body: () throws -> Void) throws -> [String] {
        let sink = Sink()
        let saved = TrainLog.logger
        TrainLog.logger = Logger(label: TrainLog.label) { _ in SinkHandler(sink: sink) }
        defer { TrainLog.logger = saved }
        try body()
        return sink.messages
    }
}

private final class Sink: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var messages: [String] { lock.withLock { list } }
    func append(_ m: String) { lock.withLock { list.append(m) } }
}

private struct SinkHandler: LogHandler {
    let sink: Sink
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { sink.append("\(event.message)") }
}
