import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchTestSupport
@testable import FinchTrain

final class NearestClassMeanTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-ncm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Each class's training photos are copies of one picture, so its mean feature points exactly
    /// where that picture's feature does: a val copy of it scores cosine 1 with its own class.
    /// Filing the val copies under the other class must then give 0 — the check can fail both ways.
    func layout(valSwapped: Bool) throws -> URL {
        let root = dir.appendingPathComponent(valSwapped ? "swapped" : "straight")
        let pictures = ["a": "rgb.png", "b": "baseline.jpg"]
        for split in ["train", "val"] {
            for c in ["a", "b"] {
                let d = root.appendingPathComponent("\(split)/\(c)")
                try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
                let source = split == "val" && valSwapped ? pictures[c == "a" ? "b" : "a"]! : pictures[c]!
                for i in 0..<(split == "train" ? 3 : 2) {
                    try FileManager.default.copyItem(at: TinyImageFolder.images.appendingPathComponent(source),
                                                     to: d.appendingPathComponent("\(i)-\(source)"))
                }
            }
        }
        return root
    }

    /// Pre-logits = each channel's mean: a 3-d feature in which the two pictures point in clearly
    /// different directions (a randomly weighted network maps both nearly onto one direction).
    final class ChannelMeans: ImageClassifier {
        init() { super.init(modelName: "channel_means", numClasses: 1, pretrainedConfig: .inception(32)) }
        override func forwardFeatures(_ x: Tensor) -> Tensor { x }
        override func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor { features.mean(axes: [2, 3]) }
    }

    func testCosineNearestClassMeanOnPooledFeatures() throws {
        let m = DeployableModel(model: ChannelMeans(), classes: ["0"], resolution: 32, cropPct: 0.875,
                                interpolation: "bicubic", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], epoch: nil)
        let straight = try NearestClassMean.run(m, data: try layout(valSwapped: false), batch: 3, workers: 0)
        XCTAssertEqual(straight.metrics.count, 4)
        XCTAssertEqual(straight.trainImages, 6)
        XCTAssertEqual(straight.featureDimension, 3)
        XCTAssertEqual(straight.metrics.top1, 1)
        XCTAssertEqual(straight.metrics.balancedAccuracy, 1)
        let swapped = try NearestClassMean.run(m, data: try layout(valSwapped: true), batch: 3, workers: 2)
        XCTAssertEqual(swapped.metrics.top1, 0)
    }

    /// A zoo model's pre-logits (MobileNetV3-Small: 1024 after conv_head) go through the same path.
    func testZooModelPreLogits() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 1000)
        try ProceduralWeights.fill(model)
        model.eval()
        let m = DeployableModel(model: model, classes: (0..<1000).map(String.init), resolution: 224, cropPct: 0.875,
                                interpolation: "bicubic", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], epoch: nil)
        let r = try NearestClassMean.run(m, data: try layout(valSwapped: false), resolution: 32, batch: 4, workers: 1)
        XCTAssertEqual(r.featureDimension, 1024)
        XCTAssertEqual(r.metrics.count, 4)
        XCTAssertEqual(r.metrics.confusion.flatMap { $0 }.reduce(0, +), 4)
    }

    func testUnitRows() {
        let u = NearestClassMean.unitRows(Tensor([3, 4, 0, 0, 0, 0], shape: [3, 2])).scalars
        XCTAssertEqual(u, [0.6, 0.8, 0, 0, 0, 0])
    }
}
