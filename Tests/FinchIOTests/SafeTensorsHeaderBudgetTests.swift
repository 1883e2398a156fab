import XCTest
import Foundation
@testable import FinchIO

/// A safetensors header is parsed only within a budget of JSON items set by the file's data
/// size, so a crafted header of many tiny entries (which JSONSerialization would expand about
/// 70-fold: 23.5 MB took 1.6 GB) is refused up front, in bounded memory.
final class SafeTensorsHeaderBudgetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-st-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Writes `count` entries of `elements` U8 elements each, in pieces so that building the
    /// file does not itself raise the peak memory the test measures.
    func writeFile(_ name: String, entries count: Int, elements: Int) throws -> URL {
        let url = dir.appendingPathComponent(name)
        func entry(_ i: Int) -> String {
            "\"t\(i)\":{\"dtype\":\"U8\",\"shape\":[\(elements)],\"data_offsets\":[\(i * elements),\((i + 1) * elements)]}"
        }
        var length = 2 + max(0, count - 1)
        for i in 0..<count { length += entry(i).utf8.count }
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let out = try FileHandle(forWritingTo: url)
        defer { try? out.close() }
        try out.write(contentsOf: withUnsafeBytes(of: UInt64(length).littleEndian) { Data($0) })
        var piece = "{"
        for i in 0..<count {
            piece += (i > 0 ? "," : "") + entry(i)
            if piece.utf8.count > 1 << 20 { try out.write(contentsOf: Data(piece.utf8)); piece = "" }
        }
        try out.write(contentsOf: Data((piece + "}").utf8))
        let zeros = Data(count: 1 << 20)
        var left = count * elements
        while left > 0 { try out.write(contentsOf: zeros.prefix(left)); left -= min(left, zeros.count) }
        return url
    }

    func peakRSS() -> Int { var u = rusage(); getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u); return u.ru_maxrss }   // KiB on Linux

    /// 200,000 empty tensors: a 12 MB header with no data, refused in under 48 MiB (the file's
    /// pages, mapped, count too); parsing it all grew the peak by 685 MiB and took 16 s.
    func testAHeaderOfManyEmptyEntriesIsRefusedInBoundedMemory() throws {
        let url = try writeFile("empty.safetensors", entries: 200_000, elements: 0)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        XCTAssertGreaterThan(size, 11_000_000)
        let peak = peakRSS()
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url)) { e in
            XCTAssertEqual(e as? SafeTensorsError, .headerTooComplex(file: url.path, limit: SafeTensorsHeader.baseItems, dataSize: 0))
            XCTAssertTrue("\(e)".contains("more than 65536 JSON items"), "\(e)")
        }
        XCTAssertLessThan(peakRSS() - peak, 48 << 10, "peak memory grew by more than 48 MiB")
    }

    /// Data raises the budget one item per byte, up to the absolute cap.
    func testTheBudgetGrowsWithTheDataUpToACap() throws {
        XCTAssertEqual(SafeTensorsHeader.itemBudget(dataSize: 0), 65_536)
        XCTAssertEqual(SafeTensorsHeader.itemBudget(dataSize: 1000), 66_536)
        XCTAssertEqual(SafeTensorsHeader.itemBudget(dataSize: Int.max - 1), SafeTensorsHeader.maxItems)
        // 5,000 entries (about 55,000 items) open with no data; 6,000 (66,000) do not; with a
        // byte of data each they do.
        XCTAssertEqual(try SafeTensorsFile(contentsOf: try writeFile("a.safetensors", entries: 5_000, elements: 0)).names.count, 5_000)
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: try writeFile("b.safetensors", entries: 6_000, elements: 0))) {
            guard case .headerTooComplex? = $0 as? SafeTensorsError else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(try SafeTensorsFile(contentsOf: try writeFile("c.safetensors", entries: 6_000, elements: 1)).names.count, 6_000)
        // Past the cap, data does not help: 50,000 entries are 550,000 items.
        let url = try writeFile("d.safetensors", entries: 50_000, elements: 12)
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url)) {
            XCTAssertEqual($0 as? SafeTensorsError, .headerTooComplex(file: url.path, limit: SafeTensorsHeader.maxItems, dataSize: 600_000))
        }
    }

    /// Brackets and separators inside names and metadata strings are text, not items.
    func testPunctuationInsideStringsIsNotCounted() throws {
        let text = String(repeating: "{[,:]}\\\"", count: 20_000)
        let header = "{\"__metadata__\":{\"note\":\"\(text)\"}}"
        let url = dir.appendingPathComponent("m.safetensors")
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Data($0) }
        bytes.append(Data(header.utf8))
        try bytes.write(to: url)
        let f = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(f.metadata["note"]?.count, 20_000 * 7)
    }
}
