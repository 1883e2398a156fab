import XCTest
import Foundation
@testable import FinchIO

/// Crafted ZIP directories: every offset, size, count and name length a file can lie about is
/// checked, and the refusal names the file (and the member when there is one).
final class ZipArchiveHardeningTests: TemporaryDirectoryTestCase {
    /// A valid two-member archive: "a" (4 bytes) then "bb" (3 bytes).
    func archive() -> CraftedZip { CraftedZip([("a", [1, 2, 3, 4]), ("bb", [5, 6, 7])]) }

    func refusal(_ zip: CraftedZip, file: StaticString = #filePath, line: UInt = #line,
                 reading member: String? = nil) throws -> String {
        let url = self.file("z.pth")
        try Data(zip.bytes).write(to: url)
        do {
            let z = try ZipArchive(url: url)
            if let member { _ = try z.member(member) }
            XCTFail("a corrupt archive was read", file: file, line: line)
            return ""
        } catch let e as TorchFileError {
            XCTAssertEqual(e.file, url.path, file: file, line: line)
            return e.reason
        }
    }

    func testTheCraftedArchiveReads() throws {
        let url = file("ok.zip")
        try Data(archive().bytes).write(to: url)
        let z = try ZipArchive(url: url)
        XCTAssertEqual(z.names, ["a", "bb"])
        XCTAssertEqual(try z.member("bb"), Data([5, 6, 7]))
    }

    func testOffsetsAndSizesOutsideTheFileAreRefused() throws {
        var z = archive()
        z.set32(z.centralEntries[1] + 42, 1_000_000)                    // local header offset
        XCTAssertEqual(try refusal(z), "member 'bb' has no local header at byte 1000000")

        z = archive()
        z.set32(z.centralEntries[0] + 20, 0x7FFF_FFF0); z.set32(z.centralEntries[0] + 24, 0x7FFF_FFF0)
        XCTAssertTrue(try refusal(z).hasPrefix("member 'a' (2147483632 bytes at byte 31) runs past its archive's data"))

        z = archive()
        z.set32(z.endRecord + 16, z.directoryOffset + 40)                // directory offset
        XCTAssertTrue(try refusal(z).hasPrefix("central directory (offset"))

        z = archive()
        z.set16(z.centralEntries[0] + 28, 60_000)                         // name length
        XCTAssertEqual(try refusal(z), "central directory entry at byte \(z.centralEntries[0]) runs past the directory")
    }

    func testEntryCountsAreBoundedByTheDirectorySize() throws {
        var z = archive()
        z.set16(z.endRecord + 10, 1000)
        XCTAssertEqual(try refusal(z), "ZIP directory claims 1000 entries but its 95 bytes hold at most 2")
        // 0xFFFF asks for a ZIP64 record, which this file does not have.
        z = archive()
        z.set16(z.endRecord + 10, 0xFFFF)
        XCTAssertEqual(try refusal(z), "ZIP end record points to a ZIP64 record that is missing")
    }

    func testZip64FieldsAreChecked() throws {
        // Rebuild the first entry with a ZIP64 extra field carrying a 2^64−1 size.
        var z = archive()
        z.set32(z.centralEntries[0] + 20, 0xFFFF_FFFF)
        z.set16(z.centralEntries[0] + 30, 12)                             // extra length
        let extraAt = z.centralEntries[0] + 46 + 1
        z.bytes.insert(contentsOf: [0x01, 0x00, 8, 0] + [UInt8](repeating: 0xFF, count: 8), at: extraAt)
        z.set32(z.endRecord + 12 + 12, z.endRecord + 12 - z.directoryOffset)   // directory size grew by 12
        XCTAssertEqual(try refusal(z), "ZIP64 compressed size of 'a' is 18446744073709551615, beyond any file size")

        // A ZIP64 field too short for the value it must hold.
        z = archive()
        z.set32(z.centralEntries[0] + 24, 0xFFFF_FFFF)
        z.set16(z.centralEntries[0] + 30, 8)
        z.bytes.insert(contentsOf: [0x01, 0x00, 4, 0, 0, 0, 0, 0], at: extraAt)
        z.set32(z.endRecord + 8 + 12, z.endRecord + 8 - z.directoryOffset)
        XCTAssertEqual(try refusal(z), "member 'a': ZIP64 field lacks the size")

        // An extra field whose length runs past its entry.
        z = archive()
        z.set16(z.centralEntries[0] + 30, 4)
        z.bytes.insert(contentsOf: [0x99, 0x99, 0xFF, 0x00], at: extraAt)
        z.set32(z.endRecord + 4 + 12, z.endRecord + 4 - z.directoryOffset)
        XCTAssertEqual(try refusal(z), "member 'a': extra field 39321 runs past its entry")
    }

    func testOverlappingDuplicateAndMismatchedMembersAreRefused() throws {
        var z = archive()
        z.set32(z.centralEntries[0] + 20, 20); z.set32(z.centralEntries[0] + 24, 20)   // 'a' swallows 'bb''s header
        XCTAssertEqual(try refusal(z), "members 'a' and 'bb' overlap")

        z = archive()
        z.set32(z.centralEntries[1] + 42, 0)                              // 'bb' points at 'a''s header
        XCTAssertEqual(try refusal(z), "member 'bb': its local header names another member")

        z = CraftedZip([("a", [1]), ("a", [2])])
        XCTAssertEqual(try refusal(z), "ZIP member 'a' appears twice")
    }

    func testCompressedAndEncryptedMembersAreRefusedWhenRead() throws {
        var z = archive()
        z.set16(z.centralEntries[1] + 10, 8)
        XCTAssertEqual(try refusal(z, reading: "bb"),
                       "member 'bb' is compressed (method 8); only stored (uncompressed) members are read, as torch.save writes them — re-save the file with torch.save")
        z = archive()
        z.set16(z.centralEntries[1] + 8, 1)
        XCTAssertEqual(try refusal(z, reading: "bb"), "member 'bb' is encrypted; torch.save never encrypts")
        z = archive()
        z.set32(z.centralEntries[1] + 24, 2)
        XCTAssertEqual(try refusal(z, reading: "bb"), "member 'bb' is stored but its sizes disagree (3 vs 2 bytes)")
    }

    func testTruncatedAndTinyFilesAreRefused() throws {
        let z = archive()
        for cut in [0, 10, 21, z.endRecord, z.bytes.count - 1] {
            var t = z
            t.bytes = Array(z.bytes.prefix(cut))
            XCTAssertFalse(try refusal(t).isEmpty, "cut at \(cut)")
        }
    }
}
