import XCTest
import Foundation
@testable import FinchTensor
import FinchNN
@testable import FinchIO
@testable import FinchParity

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

    /// Every zoo model has compact fixtures at these resolutions (make_parity.py specs in
    /// Tests/Fixtures/parity/README.md). 64 and 96 px run here; 128 and 224 px cost minutes in a
    /// debug build, so `.ci/parity` runs them all through the release `finch compare`, and this
    /// suite keeps a representative few (`largeInSuite`).
    static let resolutions = [64, 96, 128, 224]
    static let suiteResolutions = [64, 96]
    /// One per family and size class, the cheapest that still exercises the family's layers.
    static let largeInSuite = ["mobilenetv3_small_100_128_5", "tf_efficientnet_lite0_128_5", "mobilevit_xxs_128_5"]

    /// Open gaps under the float64 rule, measured on this machine (AVX-512, 2 threads) with the
    /// worst ratio allowed for their gradient checks; every other fixture must pass outright.
    /// - resnet18_96_10 (6318×, 2 threads only), resnet18_128_5 (423×, on .ci/parity's list): not
    ///   kernel bugs but one or two ReLU gates in layer4 (BatchNorm over 18 or 128 values) whose
    ///   pre-activation lies within float32 rounding (2–5·10⁻⁶) of zero; the summation order decides
    ///   the gate, and PyTorch's two float32 paths both land on float64's side. ReLUGateFlipTests
    ///   pins it; Tests/Fixtures/parity/RATIOS.md has the numbers.
    /// - resnet18_64_5 grad.norm.conv1.weight (35×): a stem max-pool window whose two largest inputs
    ///   are 4 ulps apart (RATIOS.md). mobilevit_xs_64_5 three conv norms (≤ 4.5×), resnet50_64_5
    ///   grad.norm.layer3.4.conv2.weight (3.3×): probes within noise, not analysed.
    /// - On the other kernel paths and thread counts (`.ci/parity`'s matrix, 2026-12-06) five more
    ///   fixtures cross the rule on a few gradients of late, small-plane stages: mobilenetv3_small_100
    ///   at 64 px (generic, 3.9×) and 128 px (avx2, 4.5×), resnet50_96_10 (generic 3.4×, avx512 at 3
    ///   threads 4.0×), tf_efficientnet_lite4_96_10 (generic, 12.8×), tf_efficientnet_lite2_96_10
    ///   (avx2, 70×, BatchNorm of blocks.5–6). The same pattern as above: the noise estimate comes
    ///   from two PyTorch paths, which cannot see a gate that a third valid order flips. The bounds
    ///   are the measured worst ratios rounded up; more float32 paths per fixture is the next step.
    static let knownGaps: [String: Float] = [
        "resnet18_96_10.safetensors": 7000,
        "resnet18_64_5.safetensors": 40,
        "mobilevit_xs_64_5.safetensors": 5,
        "resnet50_64_5.safetensors": 4,
        "mobilenetv3_small_100_64_5.safetensors": 5,
        "mobilenetv3_small_100_128_5.safetensors": 5,
        "resnet50_96_10.safetensors": 5,
        "tf_efficientnet_lite4_96_10.safetensors": 15,
        "tf_efficientnet_lite2_96_10.safetensors": 80,
    ]

    /// The failures a known gap does not cover: any failure of a fixture without one, and for a
    /// fixture with one, any that is not a gradient check within the gap's measured bound.
    static func unexplainedFailures(of report: ParityReport, fixture: String) -> [ParityCheck] {
        let bound = knownGaps[fixture]
        return report.failures.filter { f in
            guard let bound, f.name.hasPrefix("grad."), let r = f.ratio else { return true }
            return r > bound
        }
    }

    /// Each family has fixtures at every resolution for every model it registers, and every
    /// fixture passes the float64 rule (ParityComparison.againstFloat64): Finch's distance to
    /// float64 within 3× PyTorch float32's (the worse of NCHW and channels-last) plus 4 ulps.
    func checkFamily(_ prefix: String, models: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let registered = models.filter { ModelRegistry.names.contains($0) }
        let all = try fixtures(prefix: prefix)
        for m in registered {
            for r in Self.resolutions {
                XCTAssertTrue(all.contains { $0.lastPathComponent.hasPrefix("\(m)_\(r)_") }, "fixture missing for \(m) at \(r) px",
                              file: file, line: line)
            }
        }
        let urls = all.filter { url in
            let name = url.lastPathComponent
            return registered.contains { m in Self.suiteResolutions.contains { name.hasPrefix("\(m)_\($0)_") } }
                || Self.largeInSuite.contains { name.hasPrefix($0 + ".") }
        }
        for url in urls {
            let start = Date()
            let report = try ParityComparison.run(referenceAt: url)
            print(report.summary + String(format: " [%.1f s]", Date().timeIntervalSince(start)))
            XCTAssertTrue(report.checks.contains { $0.ratio != nil }, "\(url.lastPathComponent) has no float64 data", file: file, line: line)
            let bound = Self.knownGaps[url.lastPathComponent]
            let unexplained = Self.unexplainedFailures(of: report, fixture: url.lastPathComponent)
            if let bound, !report.failures.isEmpty {
                print("  known gap: \(report.failures.count) gradient checks over the rule, worst ratio \(report.failures.compactMap(\.ratio).max()!) (bound \(bound))")
            }
            XCTAssertTrue(unexplained.isEmpty, "\(report.summary)\n" + unexplained.prefix(8).map {
                "  \($0.name): max|Δ|=\($0.maxAbs) rel=\($0.maxRel) ratio=\($0.ratio.map(ratioText) ?? "-") tol \($0.tolerance)"
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

    /// The fixtures' batches are small enough that the 3×3 convolutions take Winograd F(2×2) (or
    /// im2col); with the weight transform's cost set to nothing they take F(4×4) wherever it needs
    /// fewer multiplies (where the CPU has AVX-512), so its looser rounding meets timm too.
    func testWinogradF4ResNetAndMobileViT() throws {
        let saved = WinogradConv.weightCost
        defer { WinogradConv.weightCost = saved }
        WinogradConv.weightCost = 0
        let g = ConvGeometry(input: [2, 64, 24, 24], weight: [64, 64, 3, 3], stride: (1, 1), padding: Padding2d(1, 1),
                             dilation: (1, 1), groups: 1, op: "test")
        XCTAssertEqual(WinogradConv.tiles(for: g) == .four, Parallel.kernelISA == "avx512", "ResNet18's first stage at 96 px")
        try checkFamily("resnet18", models: ["resnet18"])
        try checkFamily("mobilevit_xxs", models: ["mobilevit_xxs"])
    }

    func testEveryRegisteredModelHasFixtures() throws {
        let all = try fixtures(prefix: "").map(\.lastPathComponent)
        for name in ModelRegistry.names {
            XCTAssertTrue(all.contains { $0.hasPrefix(name + "_") }, "no parity fixture for registered model \(name)")
        }
    }
}
