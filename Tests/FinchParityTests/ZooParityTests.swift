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

    /// Gaps under the float64 rule that XCTest can meet (native OpenBLAS, every FINCH_KERNELS path,
    /// 1/2/3 threads), each with the worst ratio allowed for its gradient checks; every other fixture
    /// must pass outright. The noise is the largest over 14 PyTorch float32 orders (make_parity.py's
    /// ORDERS), which removed the other eleven gaps of 2026-12-06 (RATIOS.md).
    /// None is open. resnet18_96_10 was one until the gate flips' criterion took the rule's own factor:
    /// one ReLU gate in layer4.1.bn1 whose float64 pre-activation is −5.8·10⁻⁶, 1.22 spreads of
    /// PyTorch's 14 orders from zero, which Finch's default tiles open on some path × thread runs
    /// (their error there at most 1.8 spreads, 0.97 in RMS: within the rule). The fixture stores that
    /// flip (make_parity.py GATE_RULE_FACTOR), and compare names it when Finch matches it.
    /// ReLUGateFlipTests pins the mechanism.
    static let knownGaps: [String: Float] = [:]

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
    /// float64 within 3× PyTorch float32's (the farthest of make_parity.py's 14 orders) plus 4 ulps.
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
            // A file with gate flips (make_parity.py flip.*) names the truth each mode matched.
            if try SafeTensorsFile(contentsOf: url).contains("flip.0.probe") { XCTAssertEqual(report.gates.map(\.mode), ["train"], url.lastPathComponent, file: file, line: line) }
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
    /// fewer multiplies (where the CPU has AVX-512 or AVX2), so its looser rounding meets timm too.
    func testWinogradF4ResNetAndMobileViT() throws {
        let saved = WinogradConv.weightCost
        defer { WinogradConv.weightCost = saved }
        WinogradConv.weightCost = 0
        let g = ConvGeometry(input: [2, 64, 24, 24], weight: [64, 64, 3, 3], stride: (1, 1), padding: Padding2d(1, 1),
                             dilation: (1, 1), groups: 1, op: "test")
        XCTAssertEqual(WinogradConv.tiles(for: g) == .four, KernelPath.active >= .avx2, "ResNet18's first stage at 96 px")
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
