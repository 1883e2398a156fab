import XCTest
import Foundation
import FinchTestSupport
import FinchIO
@testable import FinchTrain

/// The `train` executable as a user runs it, each run a separate process: resume in a new
/// process is exact, SIGTERM stops cleanly with a resume command, `kill -9` at any moment never
/// leaves an unreadable `last.h5`, and `h5dump` (hdf5-tools) reads the layout without Finch.
final class TrainProcessTests: XCTestCase {
    var base: URL!

    /// `swift test` builds every product, `train` included, into .build/debug.
    var trainBinary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/train").standardized
    }

    override func setUpWithError() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: trainBinary.path), "the train executable is missing at \(trainBinary.path)")
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-proc-\(UUID().uuidString)")
        try TinyImageFolder.make(under: base)
    }
    override func tearDownWithError() throws { if let base { try? FileManager.default.removeItem(at: base) } }

    func writeConfig(epochs: Int, warmupEpochs: Int = 1, extra: String = "",
                     optimizer: String = "{name: adamw, lr: 1.0e-3, weight_decay: 0.05}") throws -> String {
        let text = """
        experiment: proc
        seed: 7
        data: {root: data, image_size: 32, batch_size: 2, workers: 2, drop_last: true}
        model: {name: mobilenetv3_small_100, drop_rate: 0.2}
        optimizer: \(optimizer)
        schedule: {name: cosine, epochs: \(epochs), warmup_epochs: \(warmupEpochs)}
        mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0, label_smoothing: 0.1}
        \(extra)
        """
        try text.write(to: base.appendingPathComponent("proc.yaml"), atomically: true, encoding: .utf8)
        return "proc.yaml"
    }

    @discardableResult
    func run(_ args: [String], expectStatus: Int32? = 0) throws -> (status: Int32, output: String) {
        let r = ChildProcess.run(trainBinary, args, in: base)
        if let expectStatus { XCTAssertEqual(r.status, expectStatus, "train \(args.joined(separator: " ")):\n\(r.output)") }
        return r
    }

    /// Every float and integer dataset under /model and /optimizer, by path.
    func payload(_ url: URL) throws -> [String: [UInt32]] {
        let f = try HDF5File(reading: url)
        var out: [String: [UInt32]] = [:]
        func walk(_ g: HDF5Group, _ prefix: String) throws {
            for n in try g.memberNames() {
                if g.isGroup(n) { try walk(try g.group(n), prefix + n + "/"); continue }
                let type = try g.datasetTypeName(n)
                if type.hasPrefix("float32") || type == "float" { out[prefix + n] = try g.readTensor(n).scalars.map(\.bitPattern) }
                else if type.hasPrefix("int64") { out[prefix + n] = try g.readInt64s(n).flatMap { [UInt32(truncatingIfNeeded: $0), UInt32(truncatingIfNeeded: $0 >> 32)] } }
            }
        }
        for top in ["model", "optimizer"] where f.root.isGroup(top) { try walk(try f.root.group(top), top + "/") }
        return out
    }

    /// Four epochs straight against two, then a new process resuming from the epoch-2 checkpoint
    /// for the last two: weights and AdamW moments agree bit for bit (dropout, MixUp/CutMix,
    /// augmentation and sampling all resume their streams).
    func testResumeInANewProcessIsBitExact() throws {
        let cfg = try writeConfig(epochs: 4)
        try run(["--config", cfg])
        // Each run checkpoints in its own folder; `latest` leads to the newest.
        let ck = base.appendingPathComponent("Checkpoints/proc/latest")
        let straight = base.appendingPathComponent("straight.h5"), halfway = base.appendingPathComponent("halfway.h5")
        try FileManager.default.moveItem(at: ck.appendingPathComponent("last.h5"), to: straight)
        try FileManager.default.moveItem(at: ck.appendingPathComponent("epoch-2.h5"), to: halfway)
        XCTAssertEqual(try Checkpoint.read(halfway).epoch, 2)
        let resumed = try run(["--config", cfg, "--resume", halfway.path])
        XCTAssertTrue(resumed.output.contains("resumed from"), resumed.output)
        let a = try payload(straight), b = try payload(ck.appendingPathComponent("last.h5"))
        XCTAssertGreaterThan(a.count, 100)
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
        XCTAssertTrue(differing.isEmpty, "\(differing.count) datasets differ, e.g. \(differing.prefix(5))")
        XCTAssertEqual(try Checkpoint.read(straight).metrics["train/loss"], try Checkpoint.read(ck.appendingPathComponent("last.h5")).metrics["train/loss"])
    }

    /// SIGTERM finishes the step, writes last.h5, exits 0 and prints the resume command; h5dump
    /// lists the checkpoint's layout.
    func testSigtermStopsCleanlyAndH5dumpReadsTheCheckpoint() throws {
        let cfg = try writeConfig(epochs: 200)
        let p = Process()
        p.executableURL = trainBinary
        p.arguments = ["--config", cfg]
        p.currentDirectoryURL = base
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        // Wait for training to start (the run folder line), then a little into it.
        let deadline = Date().addingTimeInterval(120)
        let ck = base.appendingPathComponent("Checkpoints/proc/latest/epoch-1.h5")
        while !FileManager.default.fileExists(atPath: ck.path) && Date() < deadline && p.isRunning { usleep(50_000) }
        XCTAssertTrue(p.isRunning, "train ended before the signal")
        p.terminate()   // SIGTERM
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, out)
        XCTAssertTrue(out.contains("stopped; resume with: train --config proc.yaml --resume "), out)
        let last = base.appendingPathComponent("Checkpoints/proc/latest/last.h5")
        let c = try Checkpoint.read(last)
        XCTAssertGreaterThan(c.globalStep, 0)

        let (status, text) = ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), ["h5dump", "-H", last.path])
        XCTAssertEqual(status, 0, "h5dump failed (apt-get install hdf5-tools):\n\(text.prefix(500))")
        for needle in ["GROUP \"model\"", "DATASET \"classifier.weight\"", "DATASET \"conv_stem.weight\"", "GROUP \"optimizer\"",
                       "ATTRIBUTE \"format\"", "DATASET \"config\"", "H5T_IEEE_F32LE"] {
            XCTAssertTrue(text.contains(needle), "h5dump -H output lacks \(needle)")
        }
    }

    /// kill -9 at arbitrary moments while checkpoints are written every step: whatever last.h5
    /// is on disk afterwards reads back whole (temporary files may remain; last.h5 is never torn).
    func testKillNineNeverLeavesATornCheckpoint() throws {
        let cfg = try writeConfig(epochs: 200, extra: "checkpoint: {every_steps: 1, keep: 0}")
        let last = base.appendingPathComponent("Checkpoints/proc/latest/last.h5")
        var rng = SystemRandomNumberGenerator()
        var checked = 0
        for round in 0..<6 {
            let p = Process()
            p.executableURL = trainBinary
            p.arguments = ["--config", cfg] + (FileManager.default.fileExists(atPath: last.path) ? ["--resume", last.path] : [])
            p.currentDirectoryURL = base
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Until a checkpoint exists, then a random moment within the next stretch of steps.
            let deadline = Date().addingTimeInterval(120)
            while round == 0 && !FileManager.default.fileExists(atPath: last.path) && Date() < deadline && p.isRunning { usleep(20_000) }
            usleep(UInt32.random(in: 200_000...1_500_000, using: &rng))
            XCTAssertTrue(p.isRunning, "round \(round): train ended early")
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal)
            XCTAssertNoThrow(try Checkpoint.read(last), "round \(round): last.h5 unreadable after kill -9")
            XCTAssertGreaterThan(try payload(last).count, 100, "round \(round)")
            checked += 1
        }
        XCTAssertEqual(checked, 6)
    }

    /// The README's resume command (`--set schedule.epochs=N+1 --resume …/last.h5`) with the kind
    /// of parameter groups the flowers config makes: layer decay plus per-prefix rates give metric
    /// names such as "lr/layer_0_decay:conv_stem", which used to collide in the checkpoint after
    /// the resumed epoch ("create dataset failed for '/metrics/lr:…'") and lose it.
    func testReadmeResumeCommandWithLayerDecayGroups() throws {
        let cfg = try writeConfig(epochs: 1, warmupEpochs: 0, optimizer: """
            {name: adamw, lr: 1.0e-3, weight_decay: 0.05, layer_decay: 0.75, layer_lr: {conv_stem: 1.0e-5}, layer_lr_multiplier: {classifier: 10}}
            """)
        try run(["--config", cfg])
        let last = base.appendingPathComponent("Checkpoints/proc/latest/last.h5")
        let first = try Checkpoint.read(last)
        let colonNames = first.metrics.keys.filter { $0.hasPrefix("lr/") && $0.contains(":") }
        XCTAssertFalse(colonNames.isEmpty, "expected per-prefix groups among \(first.metrics.keys.sorted())")
        // The experiment's folder resumes its newest run's last.h5 (the run goes on in a new folder).
        let firstRun = last.resolvingSymlinksInPath()
        let resumed = try run(["--config", cfg, "--set", "schedule.epochs=2", "--resume", "Checkpoints/proc"])
        XCTAssertTrue(resumed.output.contains("resumed from Checkpoints/proc (\(firstRun.path)) at epoch 2"), resumed.output)
        XCTAssertNotEqual(last.resolvingSymlinksInPath(), firstRun)
        let second = try Checkpoint.read(last)
        XCTAssertEqual(second.epoch, 2)
        XCTAssertEqual(second.metrics["train/loss"]?.count, 2)
        for name in first.metrics.keys where !name.hasPrefix("_trainer") {
            XCTAssertEqual(second.metrics[name]?.count, 2, name)
            XCTAssertEqual(second.metrics[name]?.first, first.metrics[name]?.first, name)
        }
        for name in colonNames { XCTAssertTrue(second.metrics[name]!.allSatisfy(\.isFinite), name) }
    }

    /// A bad `--resume` fails before the run starts and leaves no run or checkpoint folder.
    func testBadResumeLeavesNoFolders() throws {
        let cfg = try writeConfig(epochs: 1, warmupEpochs: 0)
        try "junk".write(to: base.appendingPathComponent("junk.h5"), atomically: true, encoding: .utf8)
        for (file, expected) in [("missing.h5", "does not exist"), ("junk.h5", "not an HDF5 file")] {
            let r = try run(["--config", cfg, "--resume", file], expectStatus: nil)
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains(expected), r.output)
            for folder in ["Experiments", "Checkpoints"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent(folder).path), "\(file): \(folder) created")
            }
        }
    }
}
