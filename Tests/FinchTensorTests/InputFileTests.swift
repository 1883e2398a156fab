import XCTest
import Foundation
@testable import FinchTensor

final class InputFileTests: XCTestCase {
    func testRefusesDirectoriesFIFOsAndMissingFilesWithoutBlocking() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inputfile-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        XCTAssertThrowsError(try InputFile.requireRegular(dir.path, what: "weights file")) { error in
            XCTAssertEqual(error as? InputFileError, .notRegular(path: dir.path, kind: "directory", what: "weights file"))
            XCTAssertTrue("\(error)".contains("is a directory"))
        }
        let fifo = dir.appendingPathComponent("pipe").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        // Without O_NONBLOCK this open would wait for a writer forever.
        XCTAssertThrowsError(try InputFile.read(fifo, what: "config", limit: 100)) { error in
            XCTAssertEqual(error as? InputFileError, .notRegular(path: fifo, kind: "FIFO", what: "config"))
        }
        XCTAssertThrowsError(try InputFile.requireRegular("/dev/null", what: "image")) { error in
            XCTAssertEqual(error as? InputFileError, .notRegular(path: "/dev/null", kind: "character device", what: "image"))
        }
        let missing = dir.appendingPathComponent("nope").path
        XCTAssertThrowsError(try InputFile.requireRegular(missing, what: "image")) { error in
            XCTAssertEqual(error as? InputFileError, .missing(path: missing, what: "image"))
        }
    }

    func testReadsWithinTheLimitAndRefusesLargerFiles() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("inputfile-\(getpid()).bin")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data([1, 2, 3, 4, 5]).write(to: file)
        XCTAssertEqual(try InputFile.read(file.path, what: "x", limit: 5), [1, 2, 3, 4, 5])
        XCTAssertEqual(try InputFile.requireRegular(file.path, what: "x"), 5)
        XCTAssertThrowsError(try InputFile.read(file.path, what: "x", limit: 4)) { error in
            XCTAssertEqual(error as? InputFileError, .tooLarge(path: file.path, what: "x", size: 5, limit: 4))
        }
    }

    func testCheckedByteCount() {
        XCTAssertEqual(checkedByteCount(shape: [2, 3], elementSize: 4), 24)
        XCTAssertEqual(checkedByteCount(shape: [], elementSize: 8), 8)
        XCTAssertEqual(checkedByteCount(shape: [0, 1 << 40], elementSize: 4), 0)
        XCTAssertNil(checkedByteCount(shape: [-1], elementSize: 4))
        XCTAssertNil(checkedByteCount(shape: [1 << 31, 1 << 31, 4], elementSize: 4))
        XCTAssertNil(checkedByteCount(shape: [1 << 62], elementSize: 4))
    }
}
