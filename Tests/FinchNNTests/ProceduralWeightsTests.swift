import XCTest
import FinchTensor
@testable import FinchNN

/// Bit patterns printed by Tests/Fixtures/tools/make_parity.py (numpy) for the same names:
/// the two implementations must agree exactly or every parity fixture would be off.
final class ProceduralWeightsTests: XCTestCase {
    func bits(_ name: String, _ shape: [Int]) -> [UInt32] {
        Array(ProceduralWeights.values(name: name, shape: shape).prefix(3)).map(\.bitPattern)
    }

    func testMatchesTheNumPyGenerator() {
        XCTAssertEqual(bits("conv_stem.weight", [16, 3, 3, 3]), [0xbca68500, 0xbe62e02e, 0xbe81f7a2])
        XCTAssertEqual(bits("bn1.weight", [16]), [0x3f5c3654, 0x3f535cff, 0x3fb349e4])
        XCTAssertEqual(bits("bn1.running_var", [16]), [0x3f923722, 0x3fad46e4, 0x3fa1e20f])
        XCTAssertEqual(bits("bn1.running_mean", [16]), [0x3d400fb7, 0x3dbfc6fb, 0x3b2e2367])
        XCTAssertEqual(bits("classifier.bias", [5]), [0xbdbf2088, 0xbcecaa5a, 0xbb31e867])
        XCTAssertEqual(Array(ProceduralWeights.input(batch: 1, resolution: 2).scalars.prefix(3)).map(\.bitPattern),
                       [0xbf9a7012, 0x3d69f820, 0xbebdab8a])
        XCTAssertEqual(ProceduralWeights.labels(batch: 4, classes: 5), [0, 4, 3, 4])
    }
}
