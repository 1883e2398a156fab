import XCTest
import Foundation
import FinchTestSupport
@testable import FinchTrain

/// Each run keeps its checkpoints in `Checkpoints/<experiment>/<timestamp>/` (the run folder's
/// timestamp), `latest` leads to the newest run with a `last.h5`, and `--resume` takes a file, a
/// run's folder or the experiment's folder.
final class RunLayoutTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-layout-\(UUID().uuidString)")
        try TinyImageFolder.make(under: base)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    func setup(epochs: Int = 1, resume: URL? = nil) throws -> TrainingSetup {
        let c = try TrainConfig.parse("""
            experiment: tiny
            data: {root: data, image_size: 32, batch_size: 2}
            model: {name: mobilenetv3_small_100}
            optimizer: {name: adamw, lr: 1.0e-3}
            schedule: {epochs: \(epochs), warmup_epochs: 0}
            logging: {tensorboard: false}
            """, source: "tiny.yaml")
        let s = try TrainingSetup(config: c, baseDirectory: base, resume: resume)
        s.trainer.progress = ProgressReporter(isTerminal: false)
        return s
    }

    var experiment: URL { base.appendingPathComponent("Checkpoints/tiny") }

    /// The case: a second run of the experiment used to replace the first one's best.h5.
    func testTwoRunsKeepBothBestCheckpoints() throws {
        let first = try setup()
        try first.trainer.fit()
        let second = try setup()
        try second.trainer.fit()
        XCTAssertNotEqual(first.checkpointDirectory, second.checkpointDirectory)
        for s in [first, second] {
            XCTAssertEqual(s.checkpointDirectory.deletingLastPathComponent().standardized, experiment.standardized)
            XCTAssertEqual(s.checkpointDirectory.lastPathComponent, s.runDirectory.lastPathComponent, "one timestamp for both folders")
            for f in ["best.h5", "last.h5"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: s.checkpointDirectory.appendingPathComponent(f).path), "\(s.checkpointDirectory.path)/\(f)")
            }
        }
        // Both started within the same second here: the second folder got a suffix.
        let link = experiment.appendingPathComponent("latest")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), second.checkpointDirectory.lastPathComponent)
        let names = try FileManager.default.contentsOfDirectory(atPath: experiment.path).sorted()
        XCTAssertEqual(names, [first.checkpointDirectory.lastPathComponent, second.checkpointDirectory.lastPathComponent, "latest"].sorted())
    }

    /// `latest` moves only once the new run has a last.h5: a run that has not checkpointed yet
    /// leaves it at the previous one, which a resume can still start from.
    func testLatestMovesWhenTheRunWritesItsFirstCheckpoint() throws {
        let first = try setup()
        try first.trainer.fit()
        let second = try setup()
        let link = experiment.appendingPathComponent("latest")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), first.checkpointDirectory.lastPathComponent)
        try second.trainer.fit()
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), second.checkpointDirectory.lastPathComponent)
    }

    /// A file, a run folder (its last.h5) and the experiment folder (latest/last.h5) all resume.
    func testResumeAcceptsAFileARunFolderOrTheExperimentFolder() throws {
        let first = try setup()
        try first.trainer.fit()
        let last = first.checkpointDirectory.appendingPathComponent("last.h5")
        XCTAssertEqual(try RunLayout.resumeCheckpoint(last), last)
        XCTAssertEqual(try RunLayout.resumeCheckpoint(first.checkpointDirectory), last)
        XCTAssertEqual(try RunLayout.resumeCheckpoint(experiment).resolvingSymlinksInPath(), last.resolvingSymlinksInPath())
        for form in [last, first.checkpointDirectory, experiment] {
            let resumed = try setup(epochs: 2, resume: form)
            XCTAssertEqual(resumed.trainer.epoch, 1, form.path)
            XCTAssertEqual(resumed.resumedFrom?.resolvingSymlinksInPath(), last.resolvingSymlinksInPath(), form.path)
        }
        // Continuing from the experiment folder trains on in a new run folder.
        let resumed = try setup(epochs: 2, resume: experiment)
        try resumed.trainer.fit()
        XCTAssertEqual(try Checkpoint.read(resumed.checkpointDirectory.appendingPathComponent("last.h5")).epoch, 2)
        XCTAssertEqual(try Checkpoint.read(last).epoch, 1, "the first run's checkpoint is left as it was")
    }

    /// A folder with nothing to resume from says which files it looked for.
    func testFolderWithoutCheckpointNamesThePathsTried() throws {
        let empty = base.appendingPathComponent("Checkpoints/none")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try setup(resume: empty)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("is a folder without a checkpoint to resume from (tried \(empty.path)/last.h5 and \(empty.path)/latest/last.h5)"), m)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: experiment.path), "a bad resume creates no folder")
    }

    /// A checkpoint folder from before run folders (last.h5 directly under the experiment) still resumes.
    func testExperimentFolderOfTheOldLayoutResumes() throws {
        let first = try setup()
        try first.trainer.fit()
        try FileManager.default.copyItem(at: first.checkpointDirectory.appendingPathComponent("last.h5"),
                                         to: base.appendingPathComponent("old-last.h5"))
        try FileManager.default.removeItem(at: experiment)
        try FileManager.default.createDirectory(at: experiment, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: base.appendingPathComponent("old-last.h5"), to: experiment.appendingPathComponent("last.h5"))
        XCTAssertEqual(try RunLayout.resumeCheckpoint(experiment), experiment.appendingPathComponent("last.h5"))
    }

    /// A killed checkpoint write in an earlier run's folder is cleaned up by the next run.
    func testStaleTemporaryFileInAnEarlierRunFolderIsRemoved() throws {
        let old = experiment.appendingPathComponent("20200101-000000")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        let stale = old.appendingPathComponent(".last.h5.\(1 << 23).1f2e.tmp")
        try Data(repeating: 7, count: 100).write(to: stale)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale.path)
        _ = try setup()
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path))
    }

    func testTimestampTakesASuffixWhenTheSecondIsTaken() throws {
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let runs = base.appendingPathComponent("runs"), cks = base.appendingPathComponent("cks")
        XCTAssertEqual(RunLayout.newTimestamp(outputRoot: runs, checkpointRoot: cks, experiment: "e", date: date), "20231114-221320")
        try FileManager.default.createDirectory(at: runs.appendingPathComponent("e/20231114-221320"), withIntermediateDirectories: true)
        XCTAssertEqual(RunLayout.newTimestamp(outputRoot: runs, checkpointRoot: cks, experiment: "e", date: date), "20231114-221320-2")
        try FileManager.default.createDirectory(at: cks.appendingPathComponent("e/20231114-221320-2"), withIntermediateDirectories: true)
        XCTAssertEqual(RunLayout.newTimestamp(outputRoot: runs, checkpointRoot: cks, experiment: "e", date: date), "20231114-221320-3")
    }
}
