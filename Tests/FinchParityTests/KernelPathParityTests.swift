import XCTest
import Foundation
@testable import FinchTensor
import FinchNN
@testable import FinchIO
@testable import FinchParity

/// Whole models, forward and backward, on every kernel path this CPU runs (KernelPath) and on 1, 2
/// and 3 threads, against the committed fixtures under ParityComparison's rule, so the AVX2 and
/// generic paths that only CPUs without AVX-512 take are checked on this one too. Three models cover
/// every kernel: MobileNetV3-Small (depthwise, few-channel stem, hardswish, squeeze-excite),
/// ResNet18 (Winograd, max pooling, residual BatchNorm + ReLU) and MobileViT-XXS (softmax, SiLU,
/// small-plane pointwise). To keep the debug suite short the (model, path, threads) runs form a
/// Latin square: every model runs on every path, every path on every thread count, and every model
/// on every thread count. The full matrix over every fixture runs from a release build in .ci/parity.
final class KernelPathParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/parity").standardized

    static let models = ["mobilenetv3_small_100_64_5", "resnet18_64_5", "mobilevit_xxs_64_5"]

    func testEveryPathAndThreadCountMeetsTheFixtures() throws {
        let savedThreads = Parallel.threads
        defer { Parallel.setThreads(savedThreads) }
        let paths = KernelPath.supported
        var seen = Set<String>()
        for (m, model) in Self.models.enumerated() {
            let url = Self.fixtures.appendingPathComponent(model + ".safetensors")
            for (p, path) in paths.enumerated() {
                let threads = (m + p) % 3 + 1
                seen.insert("\(path) \(threads)")
                Parallel.setThreads(threads)
                let report = try KernelPath.with(path) { try ParityComparison.run(referenceAt: url) }
                XCTAssertTrue(report.passed, "\(model), FINCH_KERNELS=\(path), \(threads) threads: \(report.summary)\n" +
                              report.failures.prefix(8).map { "  \($0.name): max|Δ|=\($0.maxAbs) rel=\($0.maxRel) tol \($0.tolerance)" }
                              .joined(separator: "\n"))
            }
        }
        XCTAssertEqual(seen.count, 3 * paths.count, "every path on 1, 2 and 3 threads")
    }
}
