import XCTest
import Foundation
@testable import FinchParity

/// `finch compare --gates`: Finch's own pre-activation at each admissible gate a fixture lists.
final class GateSidesTests: XCTestCase {
    /// resnet18_96_10 lists six train gates (an older file: the gates of its single flips). Those of
    /// act1 are bn1's fused ReLU in Finch and are read there; act2 follows the residual sum (no
    /// BatchNorm of its own) and is reported as not traced. A read from the wrong element or module
    /// would land far from float64: these pre-activations are within a few 1e-5 of zero while the
    /// layer's values are of order 1.
    func testResNet18GatesAreReadAtTheirElements() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/parity/resnet18_96_10.safetensors").standardized
        let sides = try ParityComparison.gateSides(referenceAt: url)
        XCTAssertEqual(sides.count, 6)
        for s in sides {
            if s.gate.gate.hasSuffix(".act2") {
                XCTAssertNil(s.finch, s.line)
                XCTAssertFalse(s.flipped)
                XCTAssertTrue(s.line.hasSuffix("not traced"), s.line)
                continue
            }
            let z = try XCTUnwrap(s.finch, s.line)
            XCTAssertLessThan(abs(Double(z) - s.gate.pre64), 10 * s.gate.spread, s.line)
            XCTAssertEqual(s.flipped, (z > 0) != (s.gate.pre64 > 0), s.line)
        }
        XCTAssertEqual(sides.filter { $0.finch != nil }.map(\.gate.label).sorted(), ["layer4.0.act1[1,221,1,0]", "layer4.1.act1[1,243,2,1]"])
    }
}
