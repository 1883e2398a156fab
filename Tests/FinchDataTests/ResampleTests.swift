import XCTest
import Foundation
@testable import FinchData

/// Resample against Pillow's Image.resize byte for byte (Tests/Fixtures/data/resample_reference.json,
/// made by tools/make_resample_reference.py): shrinking and enlarging with both filters, one axis
/// only, neither, integer and fractional boxes.
final class ResampleTests: XCTestCase {
    struct Reference: Decodable {
        struct Picture: Decodable { let width: Int, height: Int, pixels: String }
        struct Case: Decodable { let image: String, filter: String, box: [Double]?, width: Int, height: Int, output: String }
        let pillow: String
        let images: [String: Picture]
        let cases: [Case]
    }

    func testResizeMatchesPillowExactly() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/data/resample_reference.json").standardized
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(ref.cases.count, 17)
        for c in ref.cases {
            let p = try XCTUnwrap(ref.images[c.image])
            let input = Image(width: p.width, height: p.height, pixels: [UInt8](try XCTUnwrap(Data(base64Encoded: p.pixels))))
            let box = c.box.map { ($0[0], $0[1], $0[2], $0[3]) }
            let ours = Resample.resize(input, box: box, width: c.width, height: c.height,
                                       filter: try XCTUnwrap(Resample.Filter(rawValue: c.filter)))
            let expected = [UInt8](try XCTUnwrap(Data(base64Encoded: c.output)))
            let label = "\(c.image) \(c.filter) box \(c.box.map { "\($0)" } ?? "none") → \(c.width)×\(c.height) (Pillow \(ref.pillow))"
            XCTAssertEqual(ours.width, c.width, label)
            XCTAssertEqual(ours.height, c.height, label)
            XCTAssertEqual(ours.pixels.count, expected.count, label)
            let differing = zip(ours.pixels, expected).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(label): \(differing) of \(expected.count) values differ")
        }
    }
}
