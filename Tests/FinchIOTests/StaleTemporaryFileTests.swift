import XCTest
import Foundation
@testable import FinchIO

/// `removeStaleTemporaryFiles` removes what killed writes left, and nothing else.
final class StaleTemporaryFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-stale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A pid that is certainly not running: a child that has exited and been reaped.
    func deadPID() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @discardableResult
    func make(_ name: String, age: TimeInterval) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data("partial".utf8).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: url.path)
        return url
    }

    func testRemovesOnlyOldFilesOfDeadWriters() throws {
        let dead = try deadPID()
        let stale = [try make(".last.h5.\(dead).1f3a9c.tmp", age: 600),
                     try make(".best.h5.\(dead).4026531839.tmp", age: 3600),   // older Finch: decimal tag
                     try make(".model.v2.safetensors.\(dead).ab.tmp", age: 600)]
        let kept = [
            ".last.h5.\(dead).1f3a9d.tmp",          // dead writer, but modified just now
            ".last.h5.\(getpid()).1f3a9e.tmp",      // this process: maybe being written
            ".last.h5.1.1f3a9f.tmp",                // pid 1 is alive
            ".last.h5.tmp", "last.h5", ".last.h5.\(dead).zz.tmp", ".last.h5.x\(dead).ab.tmp",
            "..\(dead).ab.tmp", ".last.h5.\(dead).ab.tmp.bak", ".last.h5.-\(dead).ab.tmp",
        ]
        try make(kept[0], age: 1)
        for name in kept.dropFirst() { try make(name, age: 600) }
        // A directory and a symlink named like temporaries are not files Finch wrote.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".d.h5.\(dead).ab.tmp"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(".s.h5.\(dead).ab.tmp").path, withDestinationPath: stale[0].path)

        let removed = removeStaleTemporaryFiles(in: dir)
        XCTAssertEqual(Set(removed.map(\.lastPathComponent)), Set(stale.map(\.lastPathComponent)))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        XCTAssertEqual(left, Set(kept + [".d.h5.\(dead).ab.tmp", ".s.h5.\(dead).ab.tmp"]))
        XCTAssertEqual(removeStaleTemporaryFiles(in: dir), [], "a second pass finds nothing")
        XCTAssertEqual(removeStaleTemporaryFiles(in: dir.appendingPathComponent("missing")), [])
    }

    func testNamesMadeByWritersAreRecognised() {
        let path = temporaryFilePath(for: "/ck/run/last.h5")
        XCTAssertTrue(path.hasPrefix("/ck/run/.last.h5.\(getpid())."), path)
        XCTAssertEqual(temporaryFileWriter(String(path.split(separator: "/").last!)), getpid())
        XCTAssertEqual(temporaryFileWriter(".a.b.c.42.ff.tmp"), 42)
        XCTAssertNil(temporaryFileWriter(".42.ff.tmp"))
        XCTAssertNil(temporaryFileWriter(".a.99999999999.ff.tmp"))
    }
}
