import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchTestSupport
@testable import FinchTrain

/// One version everywhere: the executables' --version, each checkpoint's finch_version attribute
/// (checkpoints from before it still read), and exported files' metadata and ONNX producer_version.
final class VersionTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-version-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testExecutablesPrintTheVersion() {
        XCTAssertTrue(FinchVersion.string.split(separator: ".").count == 3 && FinchVersion.string.allSatisfy { $0.isNumber || $0 == "." })
        let bin = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug").standardized
        for tool in ["finch", "train"] {
            let r = ChildProcess.run(bin.appendingPathComponent(tool), ["--version"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(r.output.trimmingCharacters(in: .whitespacesAndNewlines), FinchVersion.string, tool)
        }
    }

    func testCheckpointsRecordTheVersionAndOlderOnesStillRead() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 2)
        let url = dir.appendingPathComponent("v.h5")
        try Checkpoint(epoch: 1, globalStep: 3, bestMetric: 0.5, modelName: model.modelName, classes: ["a", "b"], configYAML: "")
            .write(to: url, model: model, optimizer: nil, scheduler: nil, ema: nil)
        XCTAssertEqual(try Checkpoint.read(url).finchVersion, FinchVersion.string)
        XCTAssertTrue(try HDF5File(reading: url).root.hasAttribute("finch_version"))

        // Written by Finch before releases were numbered: no attribute, still a checkpoint.
        let old = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/fuzz/corpus/hdf5/checkpoint.h5").standardized
        XCTAssertFalse(try HDF5File(reading: old).root.hasAttribute("finch_version"))
        let c = try Checkpoint.read(old)
        XCTAssertNil(c.finchVersion)
        XCTAssertFalse(c.modelName.isEmpty)
    }

    func testExportsNameTheVersion() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 2)
        model.eval()
        let m = DeployableModel(model: model, classes: ["a", "b"], resolution: 32, cropPct: 0.875, interpolation: "bicubic",
                                mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], epoch: nil)
        XCTAssertEqual(m.metadata["finch_version"], FinchVersion.string)
        let st = dir.appendingPathComponent("m.safetensors"), onnx = dir.appendingPathComponent("m.onnx")
        try ModelExport.export(m, format: .safetensors, to: st)
        XCTAssertEqual(try SafeTensorsFile(contentsOf: st).metadata["finch_version"], FinchVersion.string)
        try ModelExport.export(m, format: .onnx, to: onnx)
        // ModelProto field 2 producer_name "finch", field 3 producer_version: tag, length, bytes.
        let bytes = [UInt8](try Data(contentsOf: onnx))
        let producer: [UInt8] = [0x12, 5] + Array("finch".utf8) + [0x1a, UInt8(FinchVersion.string.utf8.count)] + Array(FinchVersion.string.utf8)
        XCTAssertTrue(contains(bytes, producer), "producer_name/producer_version not found in the ONNX file")
        XCTAssertTrue(contains(bytes, Array("finch_version".utf8)))
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
    }
}
