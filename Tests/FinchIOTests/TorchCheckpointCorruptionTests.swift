import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO

/// Damaged copies of a real torch.save file: each either loads with every tensor whole, or is
/// refused with a `TorchFileError` naming it. Nothing may crash, hang or return garbage shapes.
final class TorchCheckpointCorruptionTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/pth/tiny_state.pth").standardized

    /// nil when the bytes loaded (and every tensor was consistent), else the error's text.
    func check(_ bytes: Data, _ label: String, line: UInt = #line) -> String? {
        do {
            for (name, value) in try TorchCheckpoint.read(bytes: bytes, name: "damaged.pth") {
                let count = checkedByteCount(shape: value.shape, elementSize: 1)
                switch value {
                case .float(let t): XCTAssertEqual(t.scalars.count, count, "\(label): \(name)", line: line)
                case .int64(let v, _): XCTAssertEqual(v.count, count, "\(label): \(name)", line: line)
                }
            }
            return nil
        } catch let e as TorchFileError {
            XCTAssertTrue(e.file.hasPrefix("damaged.pth"), "\(label): \(e)", line: line)
            return e.reason
        } catch {
            XCTFail("\(label): threw \(type(of: error)): \(error)", line: line)
            return "?"
        }
    }

    func testEveryTruncationIsRefused() throws {
        let base = try Data(contentsOf: Self.fixture)
        XCTAssertNil(check(base, "intact"))
        for length in stride(from: 0, to: base.count, by: 7) {
            XCTAssertNotNil(check(base.prefix(length), "truncated to \(length)"), "truncated to \(length) loaded")
        }
    }

    func testRandomByteCorruptionNeverCrashes() throws {
        let base = try Data(contentsOf: Self.fixture)
        // The pickle and the ZIP directory are where the structure lives; aim most damage there.
        let pickleEnd = 1500, directory = base.count - 1700
        var rng = RandomGenerator(seed: 2026)
        var loaded = 0, rejected = 0
        for trial in 0..<3000 {
            var bytes = base
            for _ in 0...rng.nextInt(below: 3) {
                let region = rng.nextInt(below: 10)
                let position = region < 6 ? rng.nextInt(below: pickleEnd)
                    : region < 9 ? directory + rng.nextInt(below: base.count - directory) : rng.nextInt(below: base.count)
                switch rng.nextInt(below: 3) {
                case 0: bytes[position] ^= UInt8(1 + rng.nextInt(below: 255))
                case 1: bytes[position] = [0x00, 0xFF, 0x7F, 0x80][rng.nextInt(below: 4)]
                default: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            if check(bytes, "trial \(trial)") == nil { loaded += 1 } else { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(loaded, 0, "damage inside tensor data leaves a valid file")
    }
}
