import XCTest
import Foundation
import FinchTensor
@testable import FinchData

/// Folders and CSV lists holding things that are not images: FIFOs, directories, bad labels,
/// oversized lists. Each is an error naming the path (and the line, for lists), found at listing.
final class DatasetListingTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-listing-\(UUID().uuidString)")
        for c in ["cat", "dog"] {
            let d = dir.appendingPathComponent("root/\(c)")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: ImageDecoderTests.dir.appendingPathComponent("rgb.png"), to: d.appendingPathComponent("a.png"))
        }
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var root: URL { dir.appendingPathComponent("root") }

    func assertDatasetError(_ body: @autoclosure () throws -> Any, _ parts: String..., line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            XCTAssertTrue(e is DatasetError, "\(type(of: e)): \(e)", line: line)
            for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(p)' not in: \(e)", line: line) }
        }
    }

    func testFolderRefusesFIFOsAndDirectoriesNamedLikeImages() throws {
        XCTAssertEqual(try ImageFolder(root: root).count, 2)
        let fifo = root.appendingPathComponent("cat/x.jpg")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        let start = Date()
        assertDatasetError(try ImageFolder(root: root), fifo.path, "is a FIFO")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        try FileManager.default.removeItem(at: fifo)
        let sub = root.appendingPathComponent("dog/y.jpeg")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        assertDatasetError(try ImageFolder(root: root), sub.path, "is a directory")
        try FileManager.default.removeItem(at: sub)
        // A dangling symbolic link named like an image.
        let link = root.appendingPathComponent("dog/gone.png")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: dir.appendingPathComponent("nowhere.png").path)
        assertDatasetError(try ImageFolder(root: root), link.path, "not found")
        try FileManager.default.removeItem(at: link)
        // Other extensions are skipped whatever they are, as timm lists by extension.
        XCTAssertEqual(mkfifo(root.appendingPathComponent("cat/pipe.txt").path, 0o644), 0)
        XCTAssertEqual(try ImageFolder(root: root).count, 2)
    }

    func testClassLimitsMustBeNonNegative() throws {
        let f = try ImageFolder(root: root)
        assertDatasetError(try f.limited(["cat": -1]), "class_limits['cat'] = -1")
        XCTAssertEqual(try f.limited(["cat": 0]).classCounts, [0, 1])
    }

    func write(_ name: String, _ text: String) throws -> URL {
        let u = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: u)
        return u
    }

    func testListLinesAreCheckedWithLineNumbers() throws {
        let ok = try ImageFolder(listFile: try write("ok.csv", "root/cat/a.png,1\nroot/dog/a.png,007\n"))
        XCTAssertEqual(ok.classes, ["1", "7"], "integer labels compare by value")
        let cases: [(String, [String])] = [
            ("root/cat/a.png,0\nroot/dog/a.png\n", [":2", "expected 'path,label'"]),
            ("root/cat/a.png,0\nroot/dog/a.png,-1\n", [":2", "label -1 is negative"]),
            ("root/cat/a.png,0\n\nroot/dog/a.png,1.5\n", [":3", "'1.5' is not an integer", "line 1"]),
            ("root/cat/a.png,0\nroot/dog/a.png,99999999999999999999999\n", [":2", "not an integer"]),
            ("root/cat/a.png,0\nroot/dog,1\n", [":2", "'root/dog'", "is a directory"]),
            ("root/cat/a.png,0\nroot/cat/missing.png,1\n", [":2", "image 'root/cat/missing.png' not found"]),
            ("root/cat/a.png,0\n\"root/dog/a.png,1\n", [":2", "unterminated quote"]),
        ]
        for (i, (text, parts)) in cases.enumerated() {
            let list = try write("bad\(i).csv", text)
            assertDatasetError(try ImageFolder(listFile: list), [list.path] + parts)
        }
        // A pinned class list: a label outside it names the line.
        let val = try write("val.csv", "root/cat/a.png,7\nroot/dog/a.png,8\n")
        assertDatasetError(try ImageFolder(listFile: val, classes: ok.classes), "\(val.path):2", "label '8' is not one of the classes")
        assertDatasetError(try ImageFolder(listFile: val, classes: ["7", "7"]), "repeats a class")
        // A FIFO as a list entry, and as the list itself: refused at once.
        let fifo = dir.appendingPathComponent("pipe.png")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        let withFIFO = try write("fifo.csv", "pipe.png,0\n")
        assertDatasetError(try ImageFolder(listFile: withFIFO), "\(withFIFO.path):1", "is a FIFO")
        let listFIFO = dir.appendingPathComponent("list.csv")
        XCTAssertEqual(mkfifo(listFIFO.path, 0o644), 0)
        assertDatasetError(try ImageFolder(listFile: listFIFO), listFIFO.path, "FIFO")
    }

    func assertDatasetError(_ body: @autoclosure () throws -> Any, _ parts: [String], line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            XCTAssertTrue(e is DatasetError, "\(type(of: e)): \(e)", line: line)
            for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(p)' not in: \(e)", line: line) }
        }
    }

    func testHugeAndBinaryListsAreRefused() throws {
        let big = dir.appendingPathComponent("big.csv")
        FileManager.default.createFile(atPath: big.path, contents: nil)
        let h = try FileHandle(forWritingTo: big)
        try h.truncate(atOffset: UInt64(ImageFolder.maxListBytes + 1))   // sparse: nothing is written
        try h.close()
        assertDatasetError(try ImageFolder(listFile: big), big.path, "more than the limit of \(ImageFolder.maxListBytes) bytes")
        let binary = dir.appendingPathComponent("binary.csv")
        try Data([0x72, 0x6F, 0xFF, 0xFE, 0x2C, 0x31]).write(to: binary)
        assertDatasetError(try ImageFolder(listFile: binary), binary.path, "not UTF-8")
    }
}
