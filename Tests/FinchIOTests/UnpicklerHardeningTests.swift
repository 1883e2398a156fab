import XCTest
import Foundation
import FinchTensor
@testable import FinchIO

/// Hostile pickles: deep nesting, shared and repeated objects, huge lengths, broken stacks,
/// unknown opcodes and globals each end in a `TorchFileError` naming the pickle, or in a graph
/// built with work linear in the input.
final class UnpicklerHardeningTests: XCTestCase {
    func load(_ bytes: [UInt8]) throws -> PickleGraph {
        var vm = Unpickler(Data(bytes), file: "x.pth/archive/data.pkl")
        return try vm.load()
    }

    func refusal(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try load(bytes)
            XCTFail("a hostile pickle loaded", file: file, line: line)
            return ""
        } catch {
            XCTAssertTrue(error is TorchFileError, "\(type(of: error))", file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix("x.pth/archive/data.pkl: pickle: "), "\(error)", file: file, line: line)
            return "\(error)"
        }
    }

    /// 100,000 nested tuples and 100,000 nested lists built by MARK … LIST: no recursion builds,
    /// walks or frees them.
    func testHundredThousandDeepNestingLoads() throws {
        var tuples = PickleBytes()
        tuples.op(0x4E)
        for _ in 0..<100_000 { tuples.op(0x85) }        // TUPLE1
        tuples.stop()
        var g = try load(tuples.bytes)
        var depth = 0
        var v = g.root
        while let items = g.items(v), let inner = items.first { v = inner; depth += 1 }
        XCTAssertEqual(depth, 100_000)
        XCTAssertEqual(v, .none)

        var lists = PickleBytes()
        for _ in 0..<100_000 { lists.mark() }
        for _ in 0..<100_000 { lists.op(0x6C) }         // LIST
        lists.stop()
        g = try load(lists.bytes)
        XCTAssertEqual(g.objects.count, 100_001)          // the lists and the shared empty tuple
    }

    /// a = [x, x]; b = [a, a]; … 60 levels: the objects are shared, never expanded.
    func testSharedObjectsAreNotExpanded() throws {
        var p = PickleBytes()
        p.string("x")
        for _ in 0..<60 { p.op(0x32, 0x86) }            // DUP, TUPLE2
        p.stop()
        let g = try load(p.bytes)
        XCTAssertLessThan(g.objects.count, 200)
        var v = g.root
        var levels = 0
        while let items = g.items(v), items.count == 2 { XCTAssertEqual(items[0], items[1]); v = items[0]; levels += 1 }
        XCTAssertEqual(levels, 60)
    }

    /// 200,000 single APPENDs, each followed by a memo PUT of the list (so the memo shares it),
    /// and 200,000 SETITEMs onto one dict: linear work, so this finishes quickly.
    func testManyAppendsAndSetItemsStayLinear() throws {
        var p = PickleBytes()
        p.op(0x5D); p.put(0)                            // EMPTY_LIST
        for _ in 0..<200_000 { p.op(0x4E, 0x61); p.put(0) }   // NONE, APPEND, LONG_BINPUT
        p.stop()
        var g = try load(p.bytes)
        XCTAssertEqual(g.items(g.root)?.count, 200_000)

        var d = PickleBytes()
        d.emptyDict()
        for i in 0..<200_000 { d.string("k\(i)"); d.int(i); d.setItem() }
        d.mark()
        for i in 0..<200_000 { d.string("k\(i)"); d.int(-i) }
        d.op(0x75)                                       // SETITEMS, replacing every value
        d.stop()
        g = try load(d.bytes)
        let dict = try XCTUnwrap(g.dict(g.root))
        XCTAssertEqual(dict.pairs.count, 200_000)
        XCTAssertEqual(dict["k199999"], .int(-199_999))
    }

    func testLengthsBeyondTheInputAreRefused() {
        XCTAssertTrue(refusal([0x80, 2, 0x8D] + [UInt8](repeating: 0xFF, count: 7) + [0x7F, 0x2E])
            .contains("a length of 9223372036854775807 bytes at byte 11 runs past the end of the data (1 left)"))
        XCTAssertTrue(refusal([0x80, 2, 0x8E] + [UInt8](repeating: 0xFF, count: 8) + [0x2E])
            .contains("length 18446744073709551615 at byte 3 does not fit in memory"))
        XCTAssertTrue(refusal([0x80, 2, 0x42, 0x10, 0, 0, 0, 0x41, 0x2E]).contains("a length of 16 bytes at byte 7 runs past the end"))
        XCTAssertTrue(refusal([0x80, 2, 0x8C, 200, 0x41]).contains("a length of 200 bytes"))
        XCTAssertTrue(refusal([0x80, 2, 0x8A, 9] + [UInt8](repeating: 1, count: 9) + [0x2E]).contains("wider than 64 bits"))
        XCTAssertTrue(refusal([0x80, 2, 0x63] + Array("torch\n".utf8)).contains("unterminated text line"))
        XCTAssertTrue(refusal([0x80, 2, 0x4E]).contains("unexpected end of data at byte 3"))
    }

    func testBrokenStacksAndMarksAreRefused() {
        XCTAssertTrue(refusal([0x80, 2, 0x2E]).contains("stack underflow at byte 2"))
        XCTAssertTrue(refusal([0x80, 2, 0x5D, 0x4E, 0x65, 0x2E]).contains("no MARK before the opcode at byte 4"))
        XCTAssertTrue(refusal([0x80, 2, 0x5D, 0x28, 0x61, 0x2E]).contains("pop across a MARK at byte 4"))
        XCTAssertTrue(refusal([0x80, 2, 0x4E, 0x61, 0x2E]).contains("empty stack at byte 3"))
        XCTAssertTrue(refusal([0x80, 2, 0x4E, 0x4E, 0x61, 0x2E]).contains("APPEND on None at byte 4"))
        XCTAssertTrue(refusal([0x80, 2, 0x5D, 0x4E, 0x4E, 0x73, 0x2E]).contains("SETITEM on a non-dict at byte 5"))
        XCTAssertTrue(refusal([0x80, 2, 0x71, 3, 0x2E]).contains("empty stack at byte 2"))
        XCTAssertTrue(refusal([0x80, 2, 0x68, 3, 0x2E]).contains("memo 3 read before it was written"))
        XCTAssertTrue(refusal([0x80, 2, 0x4E, 0x29, 0x52, 0x2E]).contains("REDUCE calls None, not a global"))
    }

    func testUnknownOpcodesAndGlobalsOutsideTheAllowListAreRefused() {
        XCTAssertTrue(refusal([0x80, 2, 0xFF]).contains("opcode 0xFF at byte 2 is not supported"))
        XCTAssertTrue(refusal([0x80, 2, 0x69]).contains("opcode 0x69 at byte 2"))   // INST would call a class
        var p = PickleBytes()
        p.global("builtins", "eval")
        XCTAssertTrue(refusal(p.bytes).contains("global 'builtins.eval' at byte"))
        var s = PickleBytes()
        s.string("os"); s.string("system"); s.op(0x93)   // STACK_GLOBAL
        XCTAssertTrue(refusal(s.bytes).contains("global 'os.system'"))
        var t = PickleBytes()
        t.global("torch", "load")
        XCTAssertTrue(refusal(t.bytes).contains("global 'torch.load'"))
        var ok = PickleBytes()
        ok.global("torch", "HalfStorage"); ok.global("argparse", "Namespace"); ok.op(0x86); ok.stop()
        XCTAssertNoThrow(try load(ok.bytes))
    }
}

/// Random opcode soup: every stream ends in a graph or a `TorchFileError`, never a trap.
final class UnpicklerRandomOpcodeTests: XCTestCase {
    func testRandomOpcodeStreamsNeverCrash() {
        // Opcodes the reader knows, plus a few it does not, each with argument bytes to follow.
        let opcodes: [UInt8] = [0x80, 0x95, 0x2E, 0x28, 0x4E, 0x88, 0x89, 0x4A, 0x4B, 0x4D, 0x8A, 0x47, 0x58, 0x54, 0x8C, 0x55,
                                0x8D, 0x42, 0x43, 0x8E, 0x29, 0x85, 0x86, 0x87, 0x74, 0x5D, 0x6C, 0x61, 0x65, 0x7D, 0x64, 0x73,
                                0x75, 0x8F, 0x90, 0x91, 0x63, 0x93, 0x52, 0x81, 0x62, 0x51, 0x71, 0x72, 0x94, 0x68, 0x6A, 0x30,
                                0x31, 0x32, 0x69, 0x8B]
        var rng = RandomGenerator(seed: 11)
        var loaded = 0
        // FINCH_PICKLE_TRIALS raises the count for a longer soak (300,000 ran clean).
        for trial in 0..<(Int(ProcessInfo.processInfo.environment["FINCH_PICKLE_TRIALS"] ?? "") ?? 4000) {
            var bytes: [UInt8] = [0x80, 2]
            for _ in 0..<(1 + rng.nextInt(below: 40)) {
                bytes.append(opcodes[rng.nextInt(below: opcodes.count)])
                for _ in 0..<rng.nextInt(below: 3) { bytes.append([0, 1, 2, 0xFF, 0x0A][rng.nextInt(below: 5)]) }
                if rng.nextInt(below: 8) == 0 { bytes += Array("torch\nFloatStorage\n".utf8) }
            }
            if rng.nextInt(below: 2) == 0 { bytes.append(0x2E) }
            var vm = Unpickler(Data(bytes), file: "soup")
            do { _ = try vm.load(); loaded += 1 } catch {
                XCTAssertTrue(error is TorchFileError && "\(error)".hasPrefix("soup: pickle: "), "trial \(trial): \(error)")
            }
        }
        XCTAssertGreaterThan(loaded, 0)
    }
}

final class PickleLayoutTests: XCTestCase {
    /// Memory per opcode is what bounds a hostile pickle's footprint (a few dozen bytes per byte
    /// of input); these sizes keep it there.
    func testStackSlotsAndObjectsStaySmall() {
        XCTAssertLessThanOrEqual(MemoryLayout<PickleValue>.stride, 24)
        XCTAssertLessThanOrEqual(MemoryLayout<PickleObject>.stride, 32)
    }
}
