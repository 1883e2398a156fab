import XCTest
import Foundation
@testable import FinchTrain

/// `distill.teacher.view: own` under `mpirun`: each rank renders its share of the teacher's view,
/// the global MixUp/CutMix mixes it with the student's draw, and the run matches one process.
extension DistributedTrainingTests {
    func testTeachersOwnViewMatchesOneProcess() throws {
        // A teacher to distil from: one epoch of the same tiny model.
        let teacher = try writeConfig("teacher", epochs: 1)
        train(ranks: nil, ["--config", teacher])
        let weights = checkpoint("teacher", "last.h5").path
        func student(_ name: String) throws -> String {
            let cfg = try writeConfig(name, epochs: 2)
            let url = base.appendingPathComponent(cfg)
            let text = try String(contentsOf: url, encoding: .utf8) + """

            distill: {teacher: {name: mobilenetv3_small_100, checkpoint: \(weights), image_size: 48}, kind: soft, alpha: 1.0, temperature: 1}
            """
            try text.write(to: url, atomically: true, encoding: .utf8)
            return cfg
        }
        let one = try student("kd-one"), two = try student("kd-two")
        let out1 = train(ranks: nil, ["--config", one]).output
        XCTAssertTrue(out1.contains("teacher mobilenetv3_small_100 at 48×48 px (each photo rendered again"), out1)
        train(ranks: 2, ["--config", two])
        let a = try Checkpoint.read(checkpoint("kd-one", "last.h5")), b = try Checkpoint.read(checkpoint("kd-two", "last.h5"))
        XCTAssertEqual(a.globalStep, b.globalStep)
        let la = try XCTUnwrap(a.metrics["train/loss"]), lb = try XCTUnwrap(b.metrics["train/loss"])
        XCTAssertEqual(la.count, 2)
        // α = 1: the loss is the KD term alone, so a teacher row paired with another image or
        // another mix shows in it.
        for (x, y) in zip(lb, la) { XCTAssertEqual(x, y, accuracy: 1e-4 * abs(y), "train/loss \(lb) vs one process \(la)") }
        let start = try self.weights(checkpoint("kd-one", "epoch-1.h5"))
        let d = relativeDistance(try self.weights(checkpoint("kd-two", "last.h5")), try self.weights(checkpoint("kd-one", "last.h5")), start: start)
        XCTAssertLessThan(d, 1e-4, "2 ranks' weights differ from one process by \(d) of the distance trained")
    }
}
