import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO

/// Every zoo model against timm through the committed compact fixtures (Tests/Fixtures/parity,
/// made by Tests/Fixtures/tools/make_parity.py): eval and train logits, loss, every gradient
/// (norm and probes), every BatchNorm buffer after the train step, and one AdamW step.
final class ZooParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/parity").standardized

    func fixtures(prefix: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: Self.fixtures, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "safetensors" && $0.lastPathComponent.hasPrefix(prefix) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// Open precision gaps, measured against float64 references. At 64–96 px with batch 2 the
    /// deepest EfficientNet-Lite stages normalise over 8–18 values per channel in training mode, an
    /// ill-conditioned problem: PyTorch float32 itself lands up to 6.4e-2 from exact there, and any
    /// change of rounding (e.g. OpenBLAS splitting a GEMM differently) moves Finch's error by as
    /// much. lite1/2/3 at 64 px therefore use batches of 8/4/4 (made with make_parity.py
    /// MODEL:64:5:B), which both GEMM modes pass untouched; these two keep batch 2 and a bound on
    /// train-mode checks. The rounding OpenBLAS does depends on the CPU it picks kernels for, so
    /// which fixture lands just past 3× PyTorch's own error differs between machines: measured
    /// worst rel 6e-3 (lite1_96), 2.5e-3 (lite4_64) on one, 1.3e-2 (lite2_96) on another, where
    /// re-making these at batch 4 did not help (48 checks just past 3×, worst 2.4e-2). The bounds
    /// below leave 2× headroom over the worst seen; a real error in a gradient is O(1) relative.
    /// Anything worse, or an eval-mode or optimizer check failing, fails.
    static let knownTrainModeGaps: [String: Float] = [
        "tf_efficientnet_lite1_96_10.safetensors": 1.2e-2,
        "tf_efficientnet_lite2_96_10.safetensors": 2.7e-2,
        "tf_efficientnet_lite4_64_5.safetensors": 5e-3,
    ]

    /// Each family has fixtures at two resolutions and two class counts for every model it registers.
    func checkFamily(_ prefix: String, models: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let registered = models.filter { ModelRegistry.names.contains($0) }
        let urls = try fixtures(prefix: prefix).filter { url in registered.contains { url.lastPathComponent.hasPrefix($0 + "_") } }
        for m in registered {
            XCTAssertGreaterThanOrEqual(urls.filter { $0.lastPathComponent.hasPrefix(m + "_") }.count, 2,
                                        "fixtures missing for \(m)", file: file, line: line)
        }
        for url in urls {
            let report = try ParityComparison.run(referenceAt: url)
            print(report.summary)
            let bound = Self.knownTrainModeGaps[url.lastPathComponent]
            let unexplained = report.failures.filter { f in
                guard let bound, f.name.hasPrefix("grad.") || f.name.hasPrefix("train.") else { return true }
                return f.maxRel > bound
            }
            if let bound, !report.failures.isEmpty {
                print("  known gap: \(report.failures.count) train-mode checks over tolerance, worst rel \(report.failures.map(\.maxRel).max()!) (bound \(bound))")
            }
            XCTAssertTrue(unexplained.isEmpty, "\(report.summary)\n" + unexplained.prefix(8).map {
                "  \($0.name): max|Δ|=\($0.maxAbs) rel=\($0.maxRel) tol \($0.tolerance)"
            }.joined(separator: "\n"), file: file, line: line)
        }
    }

    func testMobileNetV3() throws {
        try checkFamily("mobilenetv3", models: ["mobilenetv3_small_100", "mobilenetv3_large_100"])
    }

    func testEfficientNetLite() throws {
        try checkFamily("tf_efficientnet_lite", models: (0...4).map { "tf_efficientnet_lite\($0)" })
    }

    func testMobileViT() throws {
        try checkFamily("mobilevit", models: ["mobilevit_xxs", "mobilevit_xs", "mobilevit_s"])
    }

    func testResNet() throws {
        try checkFamily("resnet", models: ["resnet18", "resnet50"])
    }

    func testEveryRegisteredModelHasFixtures() throws {
        let all = try fixtures(prefix: "").map(\.lastPathComponent)
        for name in ModelRegistry.names {
            XCTAssertTrue(all.contains { $0.hasPrefix(name + "_") }, "no parity fixture for registered model \(name)")
        }
    }
}
