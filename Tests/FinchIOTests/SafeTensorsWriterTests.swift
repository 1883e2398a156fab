import Foundation
import XCTest
import FinchTensor
@testable import FinchIO
#if canImport(Glibc)
import Glibc
#endif

/// The writer either produces the whole file or leaves the destination as it was, with no
/// temporary file behind.
final class SafeTensorsWriterTests: TemporaryDirectoryTestCase {
    private let small: [(name: String, value: SafeTensorsValue)] = [("x", .float32(Tensor([1, 2], shape: [2])))]

    func testMissingDirectoryIsNamedAndNothingIsCreated() {
        let destination = directory.appendingPathComponent("no/such/dir/model.safetensors")
        let error = assertSafeTensorsError(try writeSafeTensors(small, to: destination))
        guard case .writeFailed(let path, let reason)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(path, destination.path)
        XCTAssertTrue(error!.description.contains(destination.path))
        XCTAssertTrue(reason.contains("No such file or directory"), reason)
        XCTAssertEqual(try contentsOfDirectory(), [])
    }

    func testOverwriteLeavesOnlyTheNewFile() throws {
        let destination = file("model.safetensors")
        try writeSafeTensors(small, to: destination)
        try writeSafeTensors([("y", .int64([1, 2, 3], shape: [3]))], to: destination)
        XCTAssertEqual(try contentsOfDirectory(), ["model.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(contentsOf: destination).int64s("y"), [1, 2, 3])
    }

    func testDestinationThatIsADirectoryFailsCleanly() throws {
        let destination = file("taken")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: false)
        guard case .writeFailed(let path, _)? = assertSafeTensorsError(try writeSafeTensors(small, to: destination))
        else { return XCTFail() }
        XCTAssertEqual(path, destination.path)
        XCTAssertEqual(try contentsOfDirectory(), ["taken"])
    }

    func testInvalidInputIsRejectedBeforeTouchingTheDestination() throws {
        let destination = file("keep.safetensors")
        try writeSafeTensors(small, to: destination)
        let before = try Data(contentsOf: destination)
        let bad: [[(name: String, value: SafeTensorsValue)]] = [
            [("a", .float32(Tensor([1], shape: [1]))), ("a", .float16(Tensor([1], shape: [1])))],
            [("__metadata__", .float32(Tensor([1], shape: [1])))],
            [("n", .int64([1, 2, 3], shape: [2]))],
            [("n", .int64([], shape: [-1, 0]))],
            [("n", .int64([], shape: [Int.max, 3]))],
        ]
        for entries in bad {
            guard case .invalidValue(let path, let key, _)? = assertSafeTensorsError(try writeSafeTensors(entries, to: destination))
            else { XCTFail("\(entries.map(\.name))"); continue }
            XCTAssertEqual(path, destination.path)
            XCTAssertTrue(entries.map(\.name).contains(key))
        }
        XCTAssertEqual(try Data(contentsOf: destination), before)
        XCTAssertEqual(try contentsOfDirectory(), ["keep.safetensors"])
    }

    #if canImport(Glibc)
    /// A write that fails part-way (here: the file-size limit makes write(2) return EFBIG)
    /// must keep the old file and remove the temporary one.
    func testFailureMidWriteKeepsOldFileAndRemovesTemporary() throws {
        let destination = file("model.safetensors")
        try writeSafeTensors(small, to: destination)
        let before = try Data(contentsOf: destination)

        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 64 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
            signal(SIGXFSZ, previousHandler)
        }

        let big = Tensor(repeating: 1, shape: [1024, 1024])   // 4 MiB, far over the limit
        let error = assertSafeTensorsError(try writeSafeTensors([("big", .float32(big))], to: destination))
        guard case .writeFailed(let path, let reason)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(path, destination.path)
        XCTAssertTrue(reason.contains("write"), reason)
        XCTAssertEqual(try Data(contentsOf: destination), before)
        XCTAssertEqual(try contentsOfDirectory(), ["model.safetensors"])
    }
    #endif
}
