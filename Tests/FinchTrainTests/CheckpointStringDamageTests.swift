import XCTest
import Foundation
import FinchIO
@testable import FinchTrain

/// A checkpoint's strings (the resolved config, the class names) are checked like its tensors:
/// damage is an error naming the object, never an empty config or an empty class list.
final class CheckpointStringDamageTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-ckpt-strings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func writeCheckpoint() throws -> URL {
        let run = CheckpointTests.Run(sgd: false)
        run.step(1)
        let url = dir.appendingPathComponent("last.h5")
        try Checkpoint(epoch: 1, globalStep: 3, bestMetric: 0.5, modelName: "smallnet",
                       classes: ["zinnia_marker_class", "rose", "tulip"], configYAML: "experiment: unique_config_marker\nseed: 3\n")
            .write(to: url, model: run.model, optimizer: run.optimizer, scheduler: run.scheduler, ema: run.ema)
        return url
    }

    func flipBit(in url: URL, inside text: String) throws {
        var bytes = try Data(contentsOf: url)
        let r = try XCTUnwrap(bytes.range(of: Data(text.utf8)), "'\(text)' not found")
        bytes[r.lowerBound + 4] ^= 0x10
        try bytes.write(to: url)
    }

    func testIntactStringsReadBack() throws {
        let back = try Checkpoint.read(try writeCheckpoint())
        XCTAssertEqual(back.configYAML, "experiment: unique_config_marker\nseed: 3\n")
        XCTAssertEqual(back.classes, ["zinnia_marker_class", "rose", "tulip"])
    }

    func testAFlippedBitInTheConfigIsAnErrorNotAnEmptyConfig() throws {
        let url = try writeCheckpoint()
        try flipBit(in: url, inside: "unique_config_marker")
        XCTAssertThrowsError(try Checkpoint.read(url)) {
            guard case .corrupted(_, let path, _)? = $0 as? HDF5Error else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "/config")
        }
        XCTAssertThrowsError(try FileInspection.describe(url)) { XCTAssertTrue("\($0)".contains("'/config' is corrupted"), "\($0)") }
    }

    func testAFlippedBitInAClassNameIsAnErrorNotAnEmptyClassList() throws {
        let url = try writeCheckpoint()
        try flipBit(in: url, inside: "zinnia_marker_class")
        XCTAssertThrowsError(try Checkpoint.read(url)) {
            guard case .corrupted(_, let path, _)? = $0 as? HDF5Error else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "/@classes")
        }
        XCTAssertThrowsError(try FileInspection.describe(url)) { XCTAssertTrue("\($0)".contains("'/@classes' is corrupted"), "\($0)") }
    }

    /// A config that is there but unreadable (here: numbers, not text) is an error; a file
    /// from before configs were stored reads with an empty one.
    func testAnUnreadableConfigIsAnErrorAndAMissingOneIsEmpty() throws {
        let url = dir.appendingPathComponent("h.h5")
        try HDF5File.writeAtomically(to: url) { root in
            try CheckpointTests.header(root)
            try root.write("config", int64s: [1, 2])
        }
        XCTAssertThrowsError(try Checkpoint.read(url)) {
            guard case .wrongKind(_, let path, _, _)? = $0 as? HDF5Error else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "/config")
        }
        try HDF5File.writeAtomically(to: url) { try CheckpointTests.header($0) }
        XCTAssertEqual(try Checkpoint.read(url).configYAML, "")
        XCTAssertEqual(try Checkpoint.read(url).classes, [])
    }

    /// A class list that is not strings is refused by name instead of read as no classes.
    func testAClassListOfNumbersIsRefused() throws {
        let url = dir.appendingPathComponent("h.h5")
        try HDF5File.writeAtomically(to: url) { root in
            try CheckpointTests.header(root)
            try root.setAttribute("classes", .int64s([1, 2]))
        }
        XCTAssertThrowsError(try Checkpoint.read(url)) { XCTAssertEqual($0 as? CheckpointError, .corrupt(file: url.path, key: "classes")) }
    }
}
