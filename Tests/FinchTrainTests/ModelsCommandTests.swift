import XCTest
import Foundation
import FinchNN
import FinchTestSupport

/// `finch models`: every zoo model with its family, parameter count, pretrained input size and
/// whether weights for it are in the weights folder.
final class ModelsCommandTests: XCTestCase {
    func testListsEveryModelWithItsSizeResolutionAndWeights() throws {
        let finch = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/finch").standardized
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("x".utf8).write(to: dir.appendingPathComponent("mobilenetv3_small_100.safetensors"))
        try Data("x".utf8).write(to: dir.appendingPathComponent("resnet18.pth"))

        let r = ChildProcess.run(finch, ["models", "--weights-dir", "weights", "--json"], in: dir.deletingLastPathComponent())
        // Run from the parent with a relative folder name: no weights there, so none are found.
        XCTAssertEqual(r.status, 0, r.output)
        let json = ChildProcess.run(finch, ["models", "--weights-dir", dir.path, "--json"])
        XCTAssertEqual(json.status, 0, json.output)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.compactMap { $0["model"] as? String }, ModelRegistry.names)
        let byName = Dictionary(uniqueKeysWithValues: list.map { ($0["model"] as! String, $0) })
        let small = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 1000)
        XCTAssertEqual(byName["mobilenetv3_small_100"]?["parameters"] as? Int, small.parameterCount)
        XCTAssertEqual(byName["mobilenetv3_small_100"]?["family"] as? String, "MobileNetV3")
        XCTAssertEqual(byName["tf_efficientnet_lite0"]?["resolution"] as? Int, 224)
        XCTAssertEqual(byName["tf_efficientnet_lite2"]?["resolution"] as? Int, 260)
        XCTAssertEqual(byName["mobilevit_xxs"]?["resolution"] as? Int, 256)
        XCTAssertEqual(byName["tf_efficientnet_lite2"]?["family"] as? String, "EfficientNetLite")
        XCTAssertEqual(byName["mobilenetv3_small_100"]?["pretrained"] as? String, dir.path + "/mobilenetv3_small_100.safetensors")
        XCTAssertEqual(byName["resnet18"]?["pretrained"] as? String, dir.path + "/resnet18.pth")
        XCTAssertNil(byName["resnet50"]?["pretrained"])

        let table = ChildProcess.run(finch, ["models", "--weights-dir", dir.path])
        XCTAssertEqual(table.status, 0, table.output)
        XCTAssertTrue(table.output.contains("\(ModelRegistry.names.count) models, 2 with pretrained weights"), table.output)
        let line = try XCTUnwrap(table.output.split(separator: "\n").first { $0.hasPrefix("tf_efficientnet_lite0 ") })
        XCTAssertTrue(line.contains("EfficientNetLite") && line.contains("4.65 M") && line.contains("224 px"), String(line))
    }
}
