import XCTest
import Foundation
import FinchTensor
@testable import FinchIO

final class FileInspectionTests: XCTestCase {
    func testDescribesSafeTensorsHDF5AndONNX() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let st = dir.appendingPathComponent("w.safetensors")
        try writeSafeTensors([("conv.weight", .float32(Tensor(zeros: [4, 3, 3, 3]))), ("bn.running_mean", .float32(Tensor(zeros: [4]))),
                              ("bn.num_batches_tracked", .int64([0], shape: []))], metadata: ["model": "tiny"], to: st)
        let a = try FileInspection.describe(st)
        XCTAssertTrue(a.contains("3 tensors") && a.contains("parameters: 108 (plus 4 running-statistics values)") && a.contains("model: tiny"), a)
        XCTAssertTrue(a.contains("conv.weight  F32  [4, 3, 3, 3]"), a)

        let h5 = dir.appendingPathComponent("c.h5")
        try HDF5File.writeAtomically(to: h5) { r in
            try r.setAttribute("format", .string("finch-checkpoint"))
            try r.setAttribute("epoch", .int64(3))
            try r.write("model/conv.weight", tensor: Tensor(zeros: [2, 2]))
            try r.write("metrics/val_top1", doubles: [0.5, 0.625])
            try r.write("config", string: "seed: 42")
        }
        let b = try FileInspection.describe(h5)
        for needle in ["HDF5 Finch checkpoint", "@epoch = 3", "val_top1: 0.5 0.625", "conv.weight  float32  [2, 2]", "seed: 42"] {
            XCTAssertTrue(b.contains(needle), "missing \(needle) in\n\(b)")
        }

        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "finch"
        var op = Onnx_OperatorSetIdProto()
        op.version = 17
        m.opsetImport = [op]
        var node = Onnx_NodeProto()
        node.opType = "Relu"
        node.input = ["input"]
        node.output = ["logits"]
        m.graph.node = [node]
        var meta = Onnx_StringStringEntryProto()
        meta.key = "classes"
        meta.value = "[\"a\",\"b\"]"
        m.metadataProps = [meta]
        let onnx = dir.appendingPathComponent("m.onnx")
        try m.serializedData().write(to: onnx)
        let c = try FileInspection.describe(onnx)
        XCTAssertTrue(c.contains("ai.onnx 17") && c.contains("Relu×1") && c.contains("classes: [\"a\",\"b\"]"), c)

        let bad = dir.appendingPathComponent("bad.onnx")
        try Data([0xff, 0xff, 0xff]).write(to: bad)
        XCTAssertThrowsError(try FileInspection.describe(bad)) { XCTAssertTrue("\($0)".contains("bad.onnx: not a readable ONNX model")) }
    }
}
