import XCTest
@testable import FinchData

final class ImageTests: XCTestCase {
    func testFilledImageIsInterleavedRGB() {
        let im = Image(width: 2, height: 1, fill: (1, 2, 3))
        XCTAssertEqual(im.pixels, [1, 2, 3, 1, 2, 3])
    }
}
