import XCTest
import Foundation
import FinchTensor
@testable import FinchData

final class ImageDecoderTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/images").standardized
    func url(_ n: String) -> URL { Self.dir.appendingPathComponent(n) }

    /// The 6×4 pattern the fixtures encode: (40x, 60y, 200 − 30x).
    var pattern: [UInt8] {
        var p: [UInt8] = []
        for y in 0..<4 {
            for x in 0..<6 {
                p.append(UInt8(40 * x))
                p.append(UInt8(60 * y))
                p.append(UInt8(200 - 30 * x))
            }
        }
        return p
    }

    func testPNGVariantsDecodeExactly() throws {
        XCTAssertEqual(try ImageDecoder.decode(contentsOf: url("rgb.png")).pixels, pattern)
        XCTAssertEqual(try ImageDecoder.decode(contentsOf: url("rgba.png")).pixels, pattern, "alpha is dropped, not composited")
        let grey = try ImageDecoder.decode(contentsOf: url("grey.png"))
        XCTAssertEqual(grey.width, 6)
        let px = grey.pixels
        for i in stride(from: 0, to: px.count, by: 3) { XCTAssertTrue(px[i] == px[i + 1] && px[i] == px[i + 2]) }
        let palette = try ImageDecoder.decode(contentsOf: url("palette.png"))
        XCTAssertEqual(palette.pixels.count, pattern.count)
        let gaps: [Int] = zip(palette.pixels, pattern).map { (a: UInt8, b: UInt8) -> Int in abs(Int(a) - Int(b)) }
        XCTAssertLessThan(gaps.max()!, 48, "16-colour palette stays close")
        XCTAssertEqual(try ImageDecoder.decode(contentsOf: url("grey16.png")).height, 4)
    }

    /// JPEG variants decode to what PIL (also libjpeg-turbo) gives, orientation applied.
    func testJPEGVariantsMatchPIL() throws {
        for n in ["baseline", "progressive", "grey", "cmyk", "exif6", "big"] {
            let ours = try ImageDecoder.decode(contentsOf: url(n + ".jpg"))
            let pil = try ImageDecoder.decode(contentsOf: url(n + ".expected.png"))
            XCTAssertEqual([ours.width, ours.height], [pil.width, pil.height], n)
            let diffs: [Int] = zip(ours.pixels, pil.pixels).map { (a: UInt8, b: UInt8) -> Int in abs(Int(a) - Int(b)) }
            let d = diffs.max() ?? 0
            XCTAssertLessThanOrEqual(d, 2, "\(n): max difference \(d)")
        }
    }

    func testDCTScalingKeepsTheShortSideAboveTheTarget() throws {
        let full = try ImageDecoder.decode(contentsOf: url("big.jpg"))
        XCTAssertEqual([full.width, full.height], [64, 48])
        let half = try ImageDecoder.decode(contentsOf: url("big.jpg"), targetShortSide: 20)
        XCTAssertEqual([half.width, half.height], [32, 24])
        let eighth = try ImageDecoder.decode(contentsOf: url("big.jpg"), targetShortSide: 6)
        XCTAssertEqual([eighth.width, eighth.height], [8, 6])
    }

    func testBadFilesAreTypedErrorsNamingTheFile() throws {
        for (n, reason) in [("not_an_image.jpg", "not a JPEG or PNG"), ("truncated.jpg", "JPEG"), ("missing.png", "unreadable")] {
            XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: url(n)), n) { e in
                XCTAssertTrue(e is ImageDecodingError, "\(e)")
                XCTAssertTrue("\(e)".contains(n) && "\(e)".contains(reason), "\(e)")
            }
        }
        // Corruptions of a valid JPEG and PNG: an error or an image, never a crash.
        for n in ["baseline.jpg", "rgb.png"] {
            let data = try Data(contentsOf: url(n))
            var rng = RandomGenerator(seed: 9)
            for cut in stride(from: 0, to: data.count, by: max(1, data.count / 40)) {
                _ = try? ImageDecoder.decode(data: data.prefix(cut), name: n)
            }
            for _ in 0..<200 {
                var d = [UInt8](data)
                for _ in 0..<3 { d[rng.nextInt(below: d.count)] = UInt8(rng.nextInt(below: 256)) }
                _ = try? ImageDecoder.decode(data: Data(d), name: n)
            }
        }
    }
}
