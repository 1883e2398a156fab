import XCTest
import Foundation
import FinchTestSupport
import FinchTensor
import FinchIO
import FinchNN
@testable import FinchTrain

/// Where a run may write: the experiment name stays one folder under the output and checkpoint
/// roots, and a resume checkpoint is checked before any folder is created.
final class RunFoldersTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-folders-\(UUID().uuidString)/work")
        try TinyImageFolder.make(under: base)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base.deletingLastPathComponent()) }

    func config() throws -> TrainConfig {
        try TrainConfig.parse("""
        experiment: tiny
        data: {root: data, image_size: 32, batch_size: 2}
        model: {name: mobilenetv3_small_100}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {epochs: 1, warmup_epochs: 0}
        """, source: "tiny.yaml")
    }

    /// Everything under the test's parent folder except the dataset.
    func created() throws -> [String] {
        let root = base.deletingLastPathComponent()
        let all = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        return all.filter { !$0.hasPrefix("work/data") && $0 != "work" }.sorted()
    }

    func testExperimentNamesThatLeaveTheRootsAreRefused() throws {
        let outside = base.deletingLastPathComponent().path + "/escaped"
        for name in ["../../x", "../escaped", "..", ".", "", outside, "a/b", "x\0y", "x\ny", "tab\there", String(repeating: "n", count: 256)] {
            var c = try config()
            c.experiment = name
            XCTAssertThrowsError(try TrainingSetup(config: c, baseDirectory: base), name.debugDescription) { e in
                guard let e = e as? ConfigError else { return XCTFail("\(e)") }
                XCTAssertEqual(e.key, "experiment")
                XCTAssertTrue(e.description.contains(name.debugDescription), e.description)
            }
        }
        XCTAssertEqual(try created(), [], "nothing is created for a refused name")
        for name in ["flowers-lite0", "run.2", "ünïcode name", ".hidden"] {
            XCTAssertNoThrow(try ExperimentName.validate(name, source: "x.yaml"), name)
        }
    }

    /// A missing file, a file that is not a checkpoint, a checkpoint for another model and one
    /// for other classes each fail before the run and checkpoint folders exist.
    func testResumeIsCheckedBeforeAnyFolderIsMade() throws {
        let c = try config()
        let notCheckpoint = base.appendingPathComponent("notes.h5")
        try "not HDF5".write(to: notCheckpoint, atomically: true, encoding: .utf8)
        let otherModel = base.appendingPathComponent("other-model.h5")
        try Checkpoint(epoch: 1, globalStep: 3, bestMetric: 0, modelName: "resnet18", classes: ["a", "b"], configYAML: "")
            .write(to: otherModel, model: Linear(2, 2), optimizer: nil, scheduler: nil, ema: nil)
        let otherClasses = base.appendingPathComponent("other-classes.h5")
        try Checkpoint(epoch: 1, globalStep: 3, bestMetric: 0, modelName: "mobilenetv3_small_100", classes: ["a", "c"], configYAML: "")
            .write(to: otherClasses, model: Linear(2, 2), optimizer: nil, scheduler: nil, ema: nil)
        let before = try created()
        let base: URL = self.base
        let cases: [(URL, String)] = [(base.appendingPathComponent("missing.h5"), "missing.h5"), (base, "work"),
                                (notCheckpoint, "not an HDF5 file"), (otherModel, "checkpoint is for resnet18"),
                                (otherClasses, "checkpoint classes [\"a\", \"c\"] differ")]
        for (url, expected) in cases {
            XCTAssertThrowsError(try TrainingSetup(config: c, baseDirectory: base, resume: url), url.lastPathComponent) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
            XCTAssertEqual(try created(), before, url.lastPathComponent)
        }
    }
}
