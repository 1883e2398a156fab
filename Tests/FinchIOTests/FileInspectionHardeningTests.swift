import XCTest
import Foundation
import FinchTensor
@testable import FinchIO

/// `finch inspect` on hostile ONNX files: dims are counted in checked arithmetic.
final class FileInspectionHardeningTests: TemporaryDirectoryTestCase {
    func testInitializerDimsThatOverflowOrAreNegativeAreReported() throws {
        for dims: [Int64] in [[Int64.max, 2], [-3, 4], [1 << 32, 1 << 32]] {
            var m = Onnx_ModelProto()
            m.irVersion = 8
            var t = Onnx_TensorProto()
            t.name = "fc.weight"
            t.dims = dims
            m.graph.initializer = [t]
            let url = file("dims.onnx")
            try m.serializedData().write(to: url)
            XCTAssertThrowsError(try FileInspection.describe(url)) {
                XCTAssertEqual("\($0)", "\(url.path): not a readable ONNX model (initializer 'fc.weight' has dims \(dims), which are negative or too large)")
            }
        }
        var m = Onnx_ModelProto()
        var t = Onnx_TensorProto()
        t.dims = [3, 4]
        m.graph.initializer = [t, t]
        let url = file("ok.onnx")
        try m.serializedData().write(to: url)
        XCTAssertTrue(try FileInspection.describe(url).contains("initializers: 2 tensors, 24 elements"))
    }

    func testANegativeTensorLimitListsNothingInsteadOfTrapping() throws {
        let url = file("w.safetensors")
        try writeSafeTensors(["a": Tensor(zeros: [2]), "b": Tensor(zeros: [3])], to: url)
        let text = try FileInspection.describe(url, maxTensors: -1)
        XCTAssertTrue(text.contains("2 tensors") && text.contains("… 2 more"), text)
        XCTAssertFalse(text.contains("  a  F32"), text)
    }
}
