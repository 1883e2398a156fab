import XCTest
import Foundation
import FinchNN
@testable import FinchTrain

/// Preprocessing read from a model bundle is validated before the first image: a crop_pct of 0
/// used to reach Int(infinity) in the eval resize and trap.
final class PredictTransformTests: XCTestCase {
    func testBadBundlePreprocessingIsAnError() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 2)
        let image = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/images/rgb.png").standardized
        for (cropPct, std, message) in [(0.0, [Float](repeating: 0.2, count: 3), "crop_pct = 0.0"), (0.9, [0.2, 0, 0.2], "std = ")] {
            let m = DeployableModel(model: model, classes: ["a", "b"], resolution: 32, cropPct: cropPct, interpolation: "bicubic",
                                    mean: [0.5, 0.5, 0.5], std: std, epoch: nil)
            XCTAssertThrowsError(try ModelInference.predict(m, images: [image])) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    /// The default top-k fits the model: 5, or every class of a model with fewer; an explicit
    /// top-k above the class count is an error naming the option.
    func testDefaultTopKFitsTheModelAndALargerOneIsRefused() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 2)
        let image = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/images/rgb.png").standardized
        let m = DeployableModel(model: model, classes: ["a", "b"], resolution: 32, cropPct: 0.875, interpolation: "bicubic",
                                mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2], epoch: nil)
        // A freshly built model is in training mode; prediction runs in evaluation mode and gives it back as it was.
        XCTAssertTrue(model.isTraining)
        let p = try ModelInference.predict(m, images: [image])
        XCTAssertEqual(p.first?.top.count, 2)
        XCTAssertTrue(model.isTraining)
        XCTAssertThrowsError(try ModelInference.predict(m, images: [image], topK: 3)) {
            XCTAssertTrue("\($0)".contains("--top-k must be in 1…2 (the model's classes), got 3"), "\($0)")
        }
    }
}
