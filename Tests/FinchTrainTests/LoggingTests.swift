import XCTest
import Foundation
import Logging
import FinchTestSupport
import FinchTensor
import FinchNN
import FinchData
@testable import FinchTrain

/// The library's output is log records an app can capture, redirect or silence (issue 21), not
/// text on stdout/stderr; `ConsoleOutput` prints them as the command line always has.
///
/// `LoggingSystem.bootstrap` may run once per process and the tests share one, so each test
/// replaces the subsystem's logger (`TrainLog.logger`, `DataLog.logger`) and puts it back.
final class LoggingTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-logging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    /// The run's next start removes a killed write's temporary file and says so as a `.notice` of
    /// `finch.train`, which reaches the app's handler and not stdout.
    func testStaleTemporaryFileRemovalIsANoticeOnTheTrainLog() throws {
        try TinyImageFolder.make(under: base)
        let dir = base.appendingPathComponent("Checkpoints/tiny")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Pids above /proc/sys/kernel/pid_max (at most 2^22) never belong to a live process.
        let stale = dir.appendingPathComponent(".last.h5.\(1 << 23).1f2e.tmp")
        try Data(repeating: 7, count: 100).write(to: stale)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale.path)
        let config = try TrainConfig.parse("""
            experiment: tiny
            data: {root: data, image_size: 32, batch_size: 2}
            model: {name: mobilenetv3_small_100}
            schedule: {epochs: 1, warmup_epochs: 0}
            """, source: "s.yaml")

        let captured = CapturedRecords()
        let stdout = try withLogger(.train, captured.logger(TrainLog.label)) {
            try written(to: STDOUT_FILENO) { _ = try TrainingSetup(config: config, baseDirectory: base) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path))
        let removals = captured.records.filter { $0.message.hasPrefix("removed ") }
        XCTAssertEqual(removals, [.init(label: "finch.train", level: .notice,
                                        message: "removed \(stale.path), left by an interrupted checkpoint write")])
        XCTAssertFalse(stdout.contains("removed"), stdout)
    }

    /// A skipped unreadable image is a `.warning` of `finch.data` naming the file, not a line on stderr.
    func testSkippedUnreadableImageIsAWarningOnTheDataLog() throws {
        let bad = base.appendingPathComponent("broken.jpg")
        try Data("not a JPEG at all".utf8).write(to: bad)
        let good = TinyImageFolder.images.appendingPathComponent("rgb.png")
        let loader = DataLoader(samples: [(good, 0), (bad, 1)], transform: ImageTransform(size: 8, training: false), batchSize: 2,
                                sampler: .sequential, dropLast: false, seed: 1, skipBadImages: true)
        loader.workers = 0

        let captured = CapturedRecords()
        var labels: [Int] = []
        let stderr = try withLogger(.data, captured.logger(DataLog.label)) {
            try written(to: STDERR_FILENO) { labels = try loader.batch(0, of: [0, 1], epoch: 0).labels }
        }
        XCTAssertEqual(labels, [0], "the unreadable image is left out of the batch")
        XCTAssertEqual(captured.records.map(\.label), ["finch.data"])
        XCTAssertEqual(captured.records.map(\.level), [.warning])
        XCTAssertFalse(stderr.contains("skipping"), stderr)
        let message = try XCTUnwrap(captured.records.first?.message)
        XCTAssertTrue(message.hasPrefix("skipping unreadable image: \(bad.path): "), message)
    }

    /// Epoch summaries and `log_interval` step lines are `.info` records of `finch.train`: an app
    /// that raises the level hears nothing, and nothing reaches stdout either way.
    func testEpochAndStepLinesAreInfoRecordsAnAppCanSilence() throws {
        func run(level: Logger.Level) throws -> (records: [CapturedRecords.Record], stdout: String) {
            let t = try tinyTrainer()
            t.progress = ProgressReporter(isTerminal: false)
            t.callbacks.append(StepLog(interval: 1))
            let captured = CapturedRecords()
            let stdout = try withLogger(.train, captured.logger(TrainLog.label, level: level)) {
                try written(to: STDOUT_FILENO) { try t.fit() }
            }
            return (captured.records, stdout)
        }
        let heard = try run(level: .info)
        XCTAssertEqual(heard.records.map(\.level), [.info, .info, .info])
        XCTAssertEqual(heard.records.map(\.label), ["finch.train", "finch.train", "finch.train"])
        let expected = ["epoch 1/1 step 1/2 (global 1) loss ", "epoch 1/1 step 2/2 (global 2) loss ", "epoch 1/1  train loss "]
        for (message, prefix) in zip(heard.records.map(\.message), expected) { XCTAssertTrue(message.hasPrefix(prefix), message) }
        XCTAssertFalse(heard.stdout.contains("epoch"), heard.stdout)

        let silenced = try run(level: .warning)
        XCTAssertEqual(silenced.records, [])
        XCTAssertFalse(silenced.stdout.contains("epoch"), silenced.stdout)
    }

    /// Run files that cannot be written do not stop training: a `.warning` of `finch.train` says so.
    func testUnwritableRunFilesAreAWarning() throws {
        let t = try tinyTrainer()
        let runs = base.appendingPathComponent("run")
        t.callbacks.append(try RunLog(directory: runs, configYAML: "experiment: tiny\n", classes: ["a", "b"]))
        // The run folder replaced by a plain file: every write under it fails.
        try FileManager.default.removeItem(at: runs)
        try Data().write(to: runs)
        let captured = CapturedRecords()
        let stderr = try withLogger(.train, captured.logger(TrainLog.label, level: .warning)) {
            try written(to: STDERR_FILENO) { try t.fit() }
        }
        XCTAssertEqual(t.records.count, 1, "the epoch still finishes")
        XCTAssertEqual(captured.records.map(\.level), [.warning])
        XCTAssertFalse(stderr.contains("could not write"), stderr)
        let message = try XCTUnwrap(captured.records.first?.message)
        XCTAssertTrue(message.hasPrefix("warning: could not write run files in \(runs.path): "), message)
    }

    /// `train` installs the console handler first thing: the library's records come out bare, on
    /// the stream they always used and in order with the command's own lines (stdout is a pipe
    /// here, so the step lines stand in for the bar).
    func testTrainPrintsTheLibraryRecordsBareOnTheirStreams() throws {
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/train").standardized
        try TinyImageFolder.make(under: base)
        try Data("not an image".utf8).write(to: base.appendingPathComponent("data/train/a/zz-broken.jpg"))
        let checkpoints = base.appendingPathComponent("Checkpoints/tiny")
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        let stale = checkpoints.appendingPathComponent(".last.h5.\(1 << 23).1f2e.tmp")
        try Data(repeating: 7, count: 100).write(to: stale)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale.path)
        try """
            experiment: tiny
            log_interval: 1
            data: {root: data, image_size: 32, batch_size: 4, drop_last: false, on_bad_image: skip}   # every image drawn; a batch less one still trains BatchNorm
            model: {name: mobilenetv3_small_100}
            schedule: {epochs: 1, warmup_epochs: 0}
            """.write(to: base.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)

        let p = Process()
        p.executableURL = binary
        p.arguments = ["--config", "t.yaml"]
        p.currentDirectoryURL = base
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Both pipes drained at once: a full one would block the child.
        let stderrData = DrainedBytes()
        let drained = DispatchGroup()
        DispatchQueue.global().async(group: drained) { stderrData.bytes = err.fileHandleForReading.readDataToEndOfFile() }
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        drained.wait()
        p.waitUntilExit()
        let stderr = String(decoding: stderrData.bytes, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, stdout + stderr)

        let lines = stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func index(_ prefix: String) -> Int {
            guard let i = lines.firstIndex(where: { $0.hasPrefix(prefix) }) else { XCTFail("no line '\(prefix)…' in\n\(stdout)"); return -1 }
            return i
        }
        let order = [index("removed "), index("tiny: mobilenetv3_small_100, 2 classes"), index("epoch 1/1 step 1/"),
                     index("epoch 1/1  train loss "), index("done: best ")]
        XCTAssertEqual(order, order.sorted(), stdout)
        XCTAssertTrue(lines.contains("removed \(stale.path), left by an interrupted checkpoint write")
                        || lines.contains { $0.hasPrefix("removed ") && $0.hasSuffix("/Checkpoints/tiny/\(stale.lastPathComponent), left by an interrupted checkpoint write") },
                      stdout)
        let errorLines = stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(errorLines.count, 1, stderr)
        XCTAssertTrue(errorLines.first?.hasPrefix("skipping unreadable image: ") == true && stderr.contains("zz-broken.jpg"), stderr)
        // No timestamp, level or label from swift-log's default handler.
        XCTAssertFalse((stdout + stderr).contains("finch."), stdout + stderr)
    }

    /// One epoch of two steps on a tiny model, without a live display.
    func tinyTrainer() throws -> Trainer {
        let c = try TrainConfig.parse("""
            experiment: tiny
            data: {root: unused, batch_size: 2}
            model: {name: tiny}
            schedule: {epochs: 1, warmup_epochs: 0}
            """, source: "t.yaml")
        let model = TinyClassifier(numClasses: 2)
        var rng = RandomGenerator(seed: 11)
        model.initializeWeights(using: &rng)
        let data = InMemoryBatches(images: Tensor.normal([4, 3, 8, 8], std: 0.5, using: &rng), labels: [0, 1, 0, 1],
                                   classes: ["a", "b"], batchSize: 2)
        let t = try Trainer(config: c, model: model, train: data, val: nil)
        t.progress = ProgressReporter(isTerminal: false)
        return t
    }

    /// Mid-epoch updates go to the installed display (the epoch's last batch always, whatever the
    /// throttle), and the epoch line clears the display before its record, as the bar is replaced
    /// on a terminal.
    func testProgressGoesToTheDisplayAndTheEpochLineClearsItFirst() throws {
        let events = EventList()
        let display = RecordingDisplay(events)
        let reporter = ProgressReporter(isTerminal: true, display: display)
        let captured = CapturedRecords(events)
        withLogger(.train, captured.logger(TrainLog.label)) {
            reporter.step(epoch: 1, epochs: 2, batch: 1, batches: 3, loss: 0.5, accuracy: nil, imagesPerSecond: 10, eta: 2)
            reporter.step(epoch: 1, epochs: 2, batch: 3, batches: 3, loss: 0.25, accuracy: 0.5, imagesPerSecond: 12, eta: 0)
            reporter.epochLine("epoch 1/2 done")
        }
        XCTAssertEqual(events.items, ["show 1/2 1/3", "show 1/2 3/3", "clear", "record info epoch 1/2 done"])

        // Not a live display (a log file): nothing drawn, nothing cleared, the line still logged.
        let plainEvents = EventList()
        let plain = ProgressReporter(isTerminal: false, display: RecordingDisplay(plainEvents))
        withLogger(.train, CapturedRecords(plainEvents).logger(TrainLog.label)) {
            plain.step(epoch: 1, epochs: 1, batch: 1, batches: 1, loss: 0.5, accuracy: nil, imagesPerSecond: 10, eta: 0)
            plain.epochLine("epoch 1/1 done")
        }
        XCTAssertEqual(plainEvents.items, ["record info epoch 1/1 done"])
        XCTAssertNil(ProgressReporter.defaultDisplay, "the library installs no display unless the app does")
    }

    /// The executables' handler prints the bare message: below `.warning` to stdout, from `.warning`
    /// up to stderr, nothing below its level.
    func testConsoleHandlerPrintsTheBareMessageToTheStreamOfItsLevel() {
        let written = EventList()
        let logger = Logger(label: "finch.train") { _ in
            ConsoleLogHandler { stream, text in written.append("\(stream == .standardOutput ? "out" : "err") \(text)") }
        }
        logger.debug("not shown")
        logger.info("epoch 1/3  train loss 1.5939")
        logger.notice("removed a.tmp, left by an interrupted checkpoint write")
        logger.warning("skipping unreadable image: x.jpg: cannot decode image")
        logger.error("warning: could not write run files")
        XCTAssertEqual(written.items, ["out epoch 1/3  train loss 1.5939\n",
                                       "out removed a.tmp, left by an interrupted checkpoint write\n",
                                       "err skipping unreadable image: x.jpg: cannot decode image\n",
                                       "err warning: could not write run files\n"])
    }

    /// The terminal bar is the line `train` has always drawn.
    func testTerminalBarLine() {
        let u = ProgressUpdate(epoch: 2, epochs: 10, batch: 10, batches: 60, loss: 0.43214, accuracy: 0.87, imagesPerSecond: 512.4, eta: 12.2)
        XCTAssertEqual(TerminalProgressBar.line(u), "\repoch 2/10 ████···················· 10/60 loss 0.4321 acc 0.870 512 img/s ETA 0:12 ")
        let soft = ProgressUpdate(epoch: 1, epochs: 1, batch: 0, batches: 0, loss: 2, accuracy: nil, imagesPerSecond: 1, eta: 3725)
        XCTAssertEqual(TerminalProgressBar.line(soft), "\repoch 1/1 ████████████████████████ 0/0 loss 2.0000 1 img/s ETA 1:02:05 ")
    }
}

// MARK: Helpers

private enum Subsystem { case train, data }

/// Runs `body` with the subsystem's logger replaced, then puts the previous one back.
private func withLogger<T>(_ subsystem: Subsystem, _ logger: Logger, _ body: () throws -> T) rethrows -> T {
    switch subsystem {
    case .train:
        let saved = TrainLog.logger
        TrainLog.logger = logger
        defer { TrainLog.logger = saved }
        return try body()
    case .data:
        let saved = DataLog.logger
        DataLog.logger = logger
        defer { DataLog.logger = saved }
        return try body()
    }
}

/// What `body` writes to `fd` (stdout or stderr), which points at a temporary file meanwhile.
private func written(to fd: Int32, during body: () throws -> Void) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-stream-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: url) }
    fflush(nil)
    let file = open(url.path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
    guard file >= 0 else { throw CocoaError(.fileWriteUnknown) }
    let saved = dup(fd)
    dup2(file, fd)
    close(file)
    defer {
        fflush(nil)
        dup2(saved, fd)
        close(saved)
    }
    try body()
    fflush(nil)
    return try String(contentsOf: url, encoding: .utf8)
}

private final class EventList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var items: [String] { lock.withLock { list } }
    func append(_ s: String) { lock.withLock { list.append(s) } }
}

/// Keeps every record a logger made from it receives (and, given a list, notes it there in order).
private final class CapturedRecords: @unchecked Sendable {
    struct Record: Equatable { let label: String; let level: Logger.Level; let message: String }
    private let lock = NSLock()
    private var list: [Record] = []
    private let events: EventList?
    init(_ events: EventList? = nil) { self.events = events }

    var records: [Record] { lock.withLock { list } }
    func append(_ r: Record) {
        lock.withLock { list.append(r) }
        events?.append("record \(r.level) \(r.message)")
    }

    func logger(_ label: String, level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { label in Handler(label: label, sink: self) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let label: String
        let sink: CapturedRecords
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { sink.append(Record(label: label, level: event.level, message: "\(event.message)")) }
    }
}

/// Written by one thread, read after it is waited for.
private final class DrainedBytes: @unchecked Sendable { var bytes = Data() }

private final class RecordingDisplay: ProgressDisplay, @unchecked Sendable {
    let events: EventList
    init(_ events: EventList) { self.events = events }
    func show(_ u: ProgressUpdate) { events.append("show \(u.epoch)/\(u.epochs) \(u.batch)/\(u.batches)") }
    func clear() { events.append("clear") }
}
