import XCTest
import Foundation
@testable import FinchData

/// CSV `path,label` lists: relative paths, header, quoting, integer labels, pinned classes, errors.
final class ListDatasetTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-list-\(UUID().uuidString)")
        let images = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/images").standardized
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("img"), withIntermediateDirectories: true)
        for f in ["big.jpg", "baseline.jpg", "rgb.png"] {
            try FileManager.default.copyItem(at: images.appendingPathComponent(f), to: dir.appendingPathComponent("img/\(f)"))
        }
        try FileManager.default.copyItem(at: images.appendingPathComponent("rgb.png"), to: dir.appendingPathComponent("img/with, comma.png"))
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> URL {
        let u = dir.appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func testNamedAndIntegerLabels() throws {
        let list = try write("train.csv", "Path,Label\nimg/big.jpg,tulip\nimg/baseline.jpg, daisy\n\"img/with, comma.png\",tulip\n# comment\n\(dir.path)/img/rgb.png,daisy\n")
        let ds = try ImageFolder(listFile: list)
        XCTAssertEqual(ds.classes, ["daisy", "tulip"])
        XCTAssertEqual(ds.count, 4)
        XCTAssertEqual(ds.samples.map(\.url.lastPathComponent), ["big.jpg", "baseline.jpg", "with, comma.png", "rgb.png"])
        XCTAssertEqual(ds.labels, [1, 0, 1, 0])
        XCTAssertEqual(ds.classCounts, [2, 2])
        // Integer labels sort numerically (10 after 9), not as text.
        let ints = try ImageFolder(listFile: try write("ints.csv", "img/big.jpg,10\nimg/baseline.jpg,9\nimg/rgb.png,2\n"))
        XCTAssertEqual(ints.classes, ["2", "9", "10"])
        XCTAssertEqual(ints.labels, [2, 1, 0])
        // A validation list keeps the training classes, even with a class it lacks.
        let val = try ImageFolder(listFile: try write("val.csv", "img/rgb.png,tulip\n"), classes: ds.classes)
        XCTAssertEqual(val.classes, ["daisy", "tulip"])
        XCTAssertEqual(val.labels, [1])
    }

    func testBadListsNameTheFileAndLine() throws {
        let cases: [(String, String)] = [
            ("img/big.jpg,a\nimg/missing.jpg,b\n", "bad.csv:2: image 'img/missing.jpg' not found"),
            ("img/big.jpg\n", "bad.csv:1: expected 'path,label'"),
            ("img/big.jpg,a,b\n", "bad.csv:1: expected 'path,label'"),
            ("\"img/big.jpg,a\n", "bad.csv:1: unterminated quote"),
            ("path,label\n", "bad.csv: the list has no 'path,label' rows"),
        ]
        for (text, expected) in cases {
            let u = try write("bad.csv", text)
            XCTAssertThrowsError(try ImageFolder(listFile: u), text) { XCTAssertTrue("\($0)".contains(expected), "\(text) → \($0)") }
        }
        XCTAssertThrowsError(try ImageFolder(listFile: dir.appendingPathComponent("none.csv"))) {
            XCTAssertTrue("\($0)".contains("none.csv: cannot read the list file"), "\($0)")
        }
        let u = try write("v.csv", "img/big.jpg,rose\n")
        XCTAssertThrowsError(try ImageFolder(listFile: u, classes: ["daisy", "tulip"])) {
            XCTAssertTrue("\($0)".contains("label 'rose' is not one of the classes"), "\($0)")
        }
    }
}
