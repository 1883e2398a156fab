import XCTest
import Foundation
import FinchTestSupport
@testable import FinchTrain

/// TensorBoard event files: TFRecord framing with masked CRC-32C, read back by TensorBoard's own
/// reader (`EventAccumulator`, Tests/Tools/check_tensorboard.py) equal to metrics.jsonl.
final class TensorBoardTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-tensorboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    /// RFC 3720 (iSCSI) B.4 vectors and the classic check value of CRC-32C.
    func testCRC32CKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    /// The mask rotates right by 15 and adds 0xa282ead8 (wrapping), as TFRecord writers do.
    func testMaskAndFraming() {
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0xE306_9283), ((0xE306_9283 >> 15) | (0xE306_9283 << 17 & 0xFFFF_FFFF)) &+ 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0xFFFF_FFFF), 0xFFFF_FFFF &+ 0xA282_EAD8)
        let framed = [UInt8](TFRecordFraming.frame(Data("abc".utf8)))
        XCTAssertEqual(framed.count, 8 + 4 + 3 + 4)
        XCTAssertEqual(Array(framed[0..<8]), [3, 0, 0, 0, 0, 0, 0, 0])
        func le32(_ at: Int) -> UInt32 { framed[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        XCTAssertEqual(le32(8), CRC32C.masked(CRC32C.checksum(Array(framed[0..<8]))))
        XCTAssertEqual(Array(framed[12..<15]), Array("abc".utf8))
        XCTAssertEqual(le32(15), CRC32C.masked(CRC32C.checksum(Array("abc".utf8))))
    }

    func config(_ extra: String = "") throws -> TrainConfig {
        try TinyImageFolder.make(under: base)
        return try TrainConfig.parse("""
            experiment: tb
            log_interval: 2
            data: {root: data, image_size: 32, batch_size: 2, drop_last: false}
            model: {name: mobilenetv3_small_100}
            optimizer: {name: adamw, lr: 1.0e-3, layer_lr_multiplier: {classifier: 10}}
            schedule: {epochs: 2, warmup_epochs: 1, warmup_lr: 1.0e-4, on_updates: true}
            \(extra)
            """, source: "tb.yaml")
    }

    /// A real run's event file, read by TensorBoard: every epoch scalar equals metrics.jsonl, the
    /// per-step loss and each group's rate are there, the config is the text summary.
    func testTensorBoardReadsTheRunsScalarsEqualToMetricsJsonl() throws {
        let setup = try TrainingSetup(config: try config(), baseDirectory: base)
        setup.trainer.progress = ProgressReporter(isTerminal: false)
        let events = try FileManager.default.contentsOfDirectory(atPath: setup.runDirectory.path).filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(events.count, 1, "the event file exists from the start")
        try setup.trainer.fit()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Tools/check_tensorboard.py").standardized
        guard try PythonTools.available(["tensorboard", "numpy"]) else { return }
        let r = PythonTools.run([script.path, setup.runDirectory.path])
        XCTAssertEqual(r.status, 0, r.output)
        // 2 epochs of 3 batches, a point every 2: steps 2 (epoch 1), 2 (epoch 2).
        XCTAssertTrue(r.output.hasPrefix("ok: ") && r.output.contains("over 2 epochs, 2 step points"), r.output)

        // The checker itself fails on a scalar that differs (a damaged metrics.jsonl).
        let jsonl = setup.runDirectory.appendingPathComponent("metrics.jsonl")
        let text = try String(contentsOf: jsonl, encoding: .utf8)
        try text.replacingOccurrences(of: "\"epoch\":2,", with: "\"epoch\":2,\"train/extra\":1,").write(to: jsonl, atomically: true, encoding: .utf8)
        let damaged = PythonTools.run([script.path, setup.runDirectory.path])
        XCTAssertEqual(damaged.status, 1, damaged.output)
        XCTAssertTrue(damaged.output.contains("train/extra: not in the event file"), damaged.output)
    }

    func testTurnedOffWritesNoEventFile() throws {
        let setup = try TrainingSetup(config: try config("logging: {tensorboard: false}"), baseDirectory: base)
        let names = try FileManager.default.contentsOfDirectory(atPath: setup.runDirectory.path)
        XCTAssertFalse(names.contains { $0.contains("tfevents") }, "\(names)")
        XCTAssertFalse(setup.trainer.callbacks.contains { $0 is TensorBoardLog })
    }

    /// A folder that cannot take the event file is an error when the log is created (before the
    /// first step), naming the file.
    func testUnwritableFolderIsAnErrorAtStart() throws {
        let notAFolder = base.appendingPathComponent("plain-file")
        try Data().write(to: notAFolder)
        XCTAssertThrowsError(try TensorBoardLog(directory: notAFolder, configYAML: "a: 1\n", classes: [], interval: 1)) { e in
            let message = "\(e)"
            XCTAssertTrue(message.hasPrefix("cannot write the TensorBoard event file \(notAFolder.path)/events.out.tfevents."), message)
            XCTAssertTrue(message.hasSuffix(": Not a directory"), message)
        }
    }

    /// The writer appends whole records: two writers' files are independent and each starts
    /// with the file version record.
    func testEventFileStartsWithTheVersionRecord() throws {
        let w = try TensorBoardWriter(directory: base, date: Date(timeIntervalSince1970: 1_700_000_000))
        try w.scalars([("a", 1.5)], step: 3)
        let bytes = [UInt8](try Data(contentsOf: w.file))
        XCTAssertTrue(w.file.lastPathComponent.hasPrefix("events.out.tfevents.1700000000."), w.file.lastPathComponent)
        let length = Int(bytes[0]) | Int(bytes[1]) << 8
        let first = try Tensorboard_Event(serializedBytes: Array(bytes[12..<12 + length]))
        XCTAssertEqual(first.fileVersion, "brain.Event:2")
        XCTAssertEqual(first.wallTime, 1_700_000_000)
        let second = 12 + length + 4
        let length2 = Int(bytes[second]) | Int(bytes[second + 1]) << 8
        let event = try Tensorboard_Event(serializedBytes: Array(bytes[second + 12..<second + 12 + length2]))
        XCTAssertEqual(event.step, 3)
        XCTAssertEqual(event.summary.value.map(\.tag), ["a"])
        XCTAssertEqual(event.summary.value.first?.simpleValue, 1.5)
        XCTAssertEqual(bytes.count, second + 12 + length2 + 4)
    }
}
