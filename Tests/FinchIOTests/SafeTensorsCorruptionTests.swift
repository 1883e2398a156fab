import Foundation
import XCTest
import FinchTensor
@testable import FinchIO

/// Damaged and hostile files: each must either load (when the damage left it valid) and then
/// answer every accessor, or throw a SafeTensorsError naming the file. Nothing may crash.
final class SafeTensorsCorruptionTests: TemporaryDirectoryTestCase {
    private var variantCount = 0

    // MARK: Helpers

    private func baseFile() throws -> Data {
        let url = file("base.safetensors")
        try writeSafeTensors([
            ("w", .float32(Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]))),
            ("h", .float16(Tensor([0.5, -1, 2], shape: [3]))),
            ("b", .bfloat16(Tensor([3, 4], shape: [1, 2]))),
            ("n", .int64([42], shape: [])),
        ], metadata: ["classes": #"["a", "b"]"#], to: url)
        return try Data(contentsOf: url)
    }

    /// A file from a header string and data bytes, with the length field set to the header's size.
    private func fileBytes(header: String, data: Data = Data(count: 8)) -> Data {
        fileBytes(headerBytes: Array(header.utf8), data: data)
    }

    private func fileBytes(headerBytes: [UInt8], data: Data) -> Data {
        var out = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        out.append(data)
        return out
    }

    private func withLengthField(_ bytes: Data, _ length: UInt64) -> Data {
        var out = bytes
        withUnsafeBytes(of: length.littleEndian) { out.replaceSubrange(0..<8, with: $0) }
        return out
    }

    /// Writes the variant under a fresh name, opens it and reads every tensor every way.
    /// Returns the error the open (or an accessor) threw, nil when all went through.
    @discardableResult
    private func check(_ bytes: Data, _ label: String, line: UInt = #line) -> SafeTensorsError? {
        variantCount += 1
        let name = "variant-\(variantCount).safetensors"
        let url = file(name)
        do { try bytes.write(to: url) } catch { XCTFail("cannot write variant \(label): \(error)"); return nil }
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            let st = try SafeTensorsFile(contentsOf: url)
            for tensorName in st.names {
                guard let info = st.info(tensorName) else { XCTFail("\(label): no info for \(tensorName)", line: line); continue }
                let rawCount = try st.rawBytes(tensorName).count
                XCTAssertEqual(rawCount, info.byteCount, label, line: line)
                let converted = try st.convertedTensor(tensorName)
                XCTAssertEqual(converted.shape, info.shape, label, line: line)
                if info.dtype.isFloatingPoint {
                    XCTAssertEqual(try st.tensor(tensorName).shape, info.shape, label, line: line)
                } else if info.dtype != .u64 {
                    XCTAssertEqual(try st.int64s(tensorName).count, converted.count, label, line: line)
                }
            }
            return nil
        } catch let error as SafeTensorsError {
            XCTAssertTrue(error.description.contains(name), "\(label): message lacks the file name: \(error)", line: line)
            XCTAssertEqual(error.file, url.path, label, line: line)
            return error
        } catch {
            XCTFail("\(label): threw \(type(of: error)), not SafeTensorsError: \(error)", line: line)
            return nil
        }
    }

    // MARK: Systematic damage

    func testEveryTruncationIsReportedWithFileName() throws {
        let base = try baseFile()
        XCTAssertNil(check(base, "intact"))
        for length in 0..<base.count {
            let error = check(base.prefix(length), "truncated to \(length)")
            XCTAssertNotNil(error, "truncated to \(length) bytes still loaded")
            if length < 8 {
                guard case .fileTooShort(_, length)? = error else { return XCTFail("length \(length): \(String(describing: error))") }
            }
        }
    }

    func testRandomByteCorruptionNeverCrashes() throws {
        let base = try baseFile()
        let headerLength = Int(base.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        var rng = RandomGenerator(seed: 2024)
        var loaded = 0, rejected = 0
        for trial in 0..<3000 {
            var bytes = base
            for _ in 0...rng.nextInt(below: 3) {
                // Mostly inside the length field and header, where the structure lives.
                let position = rng.nextInt(below: 10) == 0 ? rng.nextInt(below: bytes.count) : rng.nextInt(below: 8 + headerLength)
                switch rng.nextInt(below: 3) {
                case 0:
                    bytes[position] ^= UInt8(1 + rng.nextInt(below: 255))
                case 1:
                    // Digit for digit keeps the JSON valid while moving offsets and dimensions.
                    if let digit = bytes[8..<(8 + headerLength)].indices.filter({ (48...57).contains(bytes[$0]) })
                        .dropFirst(rng.nextInt(below: 40)).first {
                        bytes[digit] = UInt8(48 + rng.nextInt(below: 10))
                    }
                default:
                    let punctuation = Array(#"{}[]":,-. 0x"#.utf8)
                    bytes[position] = punctuation[rng.nextInt(below: punctuation.count)]
                }
            }
            if check(bytes, "corruption trial \(trial)") == nil { loaded += 1 } else { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 2000)
        XCTAssertGreaterThan(loaded, 0, "some corruptions (e.g. inside tensor data or metadata text) leave a valid file")
    }

    func testRandomGarbageNeverCrashes() {
        var rng = RandomGenerator(seed: 99)
        for trial in 0..<500 {
            let n = rng.nextInt(below: 300)
            var bytes = Data((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            if trial % 2 == 0, n >= 8 {
                // A plausible length field, so the garbage reaches the JSON parser.
                bytes = withLengthField(bytes, UInt64(rng.nextInt(below: n - 7)))
            }
            XCTAssertNotNil(check(bytes, "garbage \(trial)"))
        }
    }

    func testHeaderLengthField() throws {
        let base = try baseFile()
        let n = UInt64(base.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        for huge in [UInt64.max, 1 << 63, 1 << 40, UInt64(SafeTensorsHeader.maxLength) + 1] {
            guard case .headerTooLarge(_, huge, _)? = check(withLengthField(base, huge), "length \(huge)")
            else { return XCTFail("length \(huge)") }
        }
        let pastEnd = UInt64(base.count - 8 + 1)
        guard case .headerPastEnd(_, pastEnd, base.count)? = check(withLengthField(base, pastEnd), "past end")
        else { return XCTFail("past end") }
        // Exactly to the end: the JSON then runs into binary data.
        XCTAssertNotNil(check(withLengthField(base, UInt64(base.count - 8)), "to end"))
        for length in [0, 1, n - 8, n - 1, n + 1, n + 8] {
            XCTAssertNotNil(check(withLengthField(base, length), "length \(length)"), "length \(length) loaded")
        }
    }

    // MARK: Specific faults, each with the error it must produce

    func testMalformedHeadersAreNamedPrecisely() {
        func expect(_ header: String, data: Data = Data(count: 8), line: UInt = #line,
                    _ matches: (SafeTensorsError) -> Bool) {
            guard let error = check(fileBytes(header: header, data: data), header, line: line) else {
                return XCTFail("loaded: \(header)", line: line)
            }
            XCTAssertTrue(matches(error), "\(header) → \(error)", line: line)
        }
        func entry(_ error: SafeTensorsError, _ key: String, _ fragment: String) -> Bool {
            if case .invalidEntry(_, key, let reason) = error { return reason.contains(fragment) }
            return false
        }
        let f32x2 = #""dtype":"F32","shape":[2],"data_offsets":[0,8]"#

        expect("") { if case .headerNotJSON = $0 { return true }; return false }
        expect("{") { if case .headerNotJSON = $0 { return true }; return false }
        expect("{\"a\":") { if case .headerNotJSON = $0 { return true }; return false }
        for notObject in ["[]", "null", "\"text\"", "1", "true"] {
            expect(notObject) { if case .headerNotObject = $0 { return true }; return false }
        }
        expect(#"{"a":1}"#) { entry($0, "a", "not an object") }
        expect(#"{"a":{}}"#) { entry($0, "a", "missing \"dtype\"") }
        expect(#"{"a":{"dtype":"F32","shape":[2]}}"#) { entry($0, "a", "missing \"data_offsets\"") }
        expect(#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#) { entry($0, "a", "missing \"shape\"") }
        expect(#"{"a":{"dtype":5,"shape":[2],"data_offsets":[0,8]}}"#) { entry($0, "a", "\"dtype\" is the number 5") }
        for dtype in ["Q8", "f32", "", "F4", "C64"] {
            expect(#"{"wt":{"dtype":"\#(dtype)","shape":[2],"data_offsets":[0,8]}}"#) {
                if case .unknownDType(_, "wt", dtype) = $0 { return $0.description.contains("\"\(dtype)\"") }
                return false
            }
        }
        expect(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#) { entry($0, "a", "negative") }
        expect(#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#) { entry($0, "a", "not an integer") }
        expect(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#) { entry($0, "a", "not an integer") }
        expect(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}"#) { entry($0, "a", "boolean") }
        expect(#"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#) { entry($0, "a", "not a list") }
        expect(#"{"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}}"#) { entry($0, "a", "dimension 0") }
        expect(#"{"a":{"dtype":"F32","shape":[null],"data_offsets":[0,8]}}"#) { entry($0, "a", "null") }
        expect(#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#) { entry($0, "a", "dimension 0") }
        expect(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#) { entry($0, "a", "more elements") }
        expect(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,8]}}"#) { entry($0, "a", "more elements") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#) { entry($0, "a", "[begin, end]") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#) { entry($0, "a", "[begin, end]") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":{"0":8}}}"#) { entry($0, "a", "[begin, end]") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#) { entry($0, "a", "ends before it begins") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}}"#) { entry($0, "a", "begin") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e30]}}"#) { entry($0, "a", "end") }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#) { entry($0, "a", "negative") }
        expect(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#) {
            if case .dataPastEnd(_, "a", 16, 8) = $0 { return true }; return false
        }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#) { entry($0, "a", "end") }
        expect(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#) {
            if case .byteCountMismatch(_, "a", .f32, [3], 12, 8) = $0 { return true }; return false
        }
        expect(#"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}}"#) {
            if case .byteCountMismatch(_, "a", .i64, [2], 16, 8) = $0 { return true }; return false
        }
        expect(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
               data: Data(count: 12)) {
            if case .overlappingData(_, "b", "a") = $0 { return true }; return false
        }
        expect(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#) {
            if case .gapBeforeData(_, "a", 4, 0) = $0 { return true }; return false
        }
        expect(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) {
            if case .trailingData(_, 4, 8) = $0 { return true }; return false
        }
        expect(#"{}"#, data: Data(count: 1)) { if case .trailingData(_, 0, 1) = $0 { return true }; return false }
        expect(#"{"__metadata__":{"k":1},"a":{\#(f32x2)}}"#) {
            if case .invalidMetadata(_, "k"?, _) = $0 { return true }; return false
        }
        expect(#"{"__metadata__":["k"],"a":{\#(f32x2)}}"#) {
            if case .invalidMetadata(_, nil, _) = $0 { return true }; return false
        }
        expect("\u{FEFF}{\"a\":{\(f32x2)}}") { if case .headerNotJSON = $0 { return true }; return false }
        expect("{\"a\":{\(f32x2)}}\u{0}") { if case .headerNotJSON = $0 { return true }; return false }
        expect("{\"a\":{\(f32x2)}} x") { if case .headerNotJSON = $0 { return true }; return false }
        expect("{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}") {
            if case .headerNotJSON = $0 { return true }; return false
        }
        // Invalid UTF-8 cannot be spelled in a Swift string; patch the bytes instead.
        var bytes = Array(#"{"aX":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        bytes[3] = 0xFF
        guard case .headerNotUTF8? = check(fileBytes(headerBytes: bytes, data: Data(count: 8)), "invalid UTF-8")
        else { return XCTFail("invalid UTF-8") }
    }

    func testUnusualButValidHeadersLoad() throws {
        let f32x2 = #""dtype":"F32","shape":[2],"data_offsets":[0,8]"#
        XCTAssertNil(check(fileBytes(header: "  \n{\"a\":{\(f32x2)}}\t  "), "surrounding whitespace"))
        XCTAssertNil(check(fileBytes(header: "{\"__metadata__\":null,\"a\":{\(f32x2)}}"), "null metadata"))
        XCTAssertNil(check(fileBytes(header: "{\"a\":{\(f32x2),\"extra\":[1,{}]}}"), "unknown field"))
        XCTAssertNil(check(fileBytes(header: "{\"\(String(repeating: "x", count: 100_000))\":{\(f32x2)}}"), "long name"))
        XCTAssertNil(check(fileBytes(header: #"{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"#
                                     + f32x2 + "}}"), "empty tensor at offset 0"))
        // Zero elements, however large the other dimensions, as long as their product is addressable.
        XCTAssertNil(check(fileBytes(header: #"{"big":{"dtype":"F32","shape":[0,4294967296,2147483647],"#
                                     + #""data_offsets":[0,0]}}"#, data: Data()), "zero-size with large dimensions"))

        // Unaligned data (odd header length) still reads correctly.
        let values: [Float] = [1.5, -2]
        var data = Data()
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        let url = file("unaligned.safetensors")
        try fileBytes(header: "{\"a\":{\(f32x2)}} ", data: data).write(to: url)
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).tensor("a").scalars, values)
    }

    func testU64AboveInt64MaxIsReportedNotWrapped() throws {
        var data = Data()
        for v in [UInt64(7), UInt64.max] { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        let url = file("u64.safetensors")
        try fileBytes(header: #"{"u":{"dtype":"U64","shape":[2],"data_offsets":[0,16]}}"#, data: data).write(to: url)
        let st = try SafeTensorsFile(contentsOf: url)
        guard case .valueOutOfRange(_, "u", let reason)? = assertSafeTensorsError(try st.int64s("u"))
        else { return XCTFail() }
        XCTAssertTrue(reason.contains("element 1"))
        XCTAssertEqual(try st.convertedTensor("u").scalars, [7, Float(UInt64.max)])
    }

    func testUnreadablePaths() throws {
        let missing = file("does-not-exist.safetensors")
        guard case .unreadable(let path, let reason)? = assertSafeTensorsError(try SafeTensorsFile(contentsOf: missing))
        else { return XCTFail() }
        XCTAssertEqual(path, missing.path)
        XCTAssertTrue(reason.contains("No such file"), reason)

        guard case .unreadable(_, "not a regular file (it is a directory)")? = assertSafeTensorsError(try SafeTensorsFile(contentsOf: directory))
        else { return XCTFail() }

        let empty = file("empty.safetensors")
        try Data().write(to: empty)
        guard case .fileTooShort(_, 0)? = assertSafeTensorsError(try SafeTensorsFile(contentsOf: empty))
        else { return XCTFail() }
    }
}
