import Foundation
import XCTest
@testable import FinchIO

/// A fresh directory per test, removed afterwards, so tests never see each other's files.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("FinchIOTests-\(getpid())-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    func contentsOfDirectory() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }
}

/// Asserts `body` throws a SafeTensorsError and hands it back for closer checks.
@discardableResult
func assertSafeTensorsError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath,
                               line: UInt = #line) -> SafeTensorsError? {
    do {
        _ = try body()
        XCTFail("expected a SafeTensorsError, got a value", file: file, line: line)
    } catch let error as SafeTensorsError {
        return error
    } catch {
        XCTFail("expected a SafeTensorsError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

/// Bitwise equality that treats every NaN as equal to every NaN.
func sameFloat(_ a: Float, _ b: Float) -> Bool {
    (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern
}
