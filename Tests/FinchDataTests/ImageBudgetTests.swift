import XCTest
import Foundation
import FinchTensor
@testable import FinchData

/// Hostile image files: a pixel budget checked before allocation, a file-size budget, a scan
/// limit for progressive JPEGs, non-regular files refused without blocking, and damaged files
/// as errors naming the file, with nothing printed by libpng or libjpeg.
final class ImageBudgetTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func fixture(_ n: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: ImageDecoderTests.dir.appendingPathComponent(n))) }

    // MARK: PNG crafting

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body[...]))
    }
    /// An 8-bit RGB PNG declaring width × height, with `idat` bytes of (not necessarily enough) image data.
    static func png(width: UInt32, height: UInt32, idat: [UInt8]) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
            + chunk("IDAT", idat) + chunk("IEND", [])
    }

    func decodeError(_ bytes: [UInt8], name: String, limits: ImageLimits = .standard) -> String? {
        do { _ = try ImageDecoder.decode(data: Data(bytes), name: name, limits: limits); return nil } catch {
            XCTAssertTrue(error is ImageDecodingError, "\(type(of: error)): \(error)")
            return "\(error)"
        }
    }

    /// A chunk declaring more bytes than the file holds (the fuzzer's 103-byte file with a 1.7 GB
    /// iTXt, which libpng allocated before reading) is refused before libpng sees it; chunks that
    /// fit still decode.
    func testChunkLengthsMustFitInTheFile() throws {
        let header = Array(Self.png(width: 6, height: 4, idat: []).prefix(33))   // signature + IHDR
        var bomb = header + Self.be32(0x66D9_1400) + Array("iTXt".utf8) + [UInt8](repeating: 0, count: 40)
        bomb += Self.chunk("IEND", [])
        let m = decodeError(bomb, name: "bomb.png") ?? ""
        XCTAssertTrue(m.contains("bomb.png") && m.contains("chunk 'iTXt' at byte 33: it declares 1725502464 bytes"), m)
        XCTAssertNil(Self.png(width: 6, height: 4, idat: [1, 2, 3]).withUnsafeBytes { PNGChunks.layoutProblem($0) })
        XCTAssertNil(try fixture("rgb.png").withUnsafeBytes { PNGChunks.layoutProblem($0) })
        XCTAssertNoThrow(try ImageDecoder.decode(data: Data(try fixture("rgb.png")), name: "rgb.png"))
    }

    /// A 4 KB PNG declaring 30000×30000 (3.6 GB of RGBA) is refused from its header, fast.
    func testHugeDeclaredPNGIsRefusedBeforeAllocating() throws {
        // A zlib stream of stored blocks: valid data, far too little of it.
        let idat: [UInt8] = [0x78, 0x01, 0x01, 0x00, 0x10, 0xFF, 0xEF] + [UInt8](repeating: 0, count: 4096)
        let bytes = Self.png(width: 30000, height: 30000, idat: idat)
        XCTAssertLessThan(bytes.count, 5000)
        let file = dir.appendingPathComponent("bomb.png")
        try Data(bytes).write(to: file)
        func peakRSS() -> Int { var u = rusage(); getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u); return u.ru_maxrss }   // KiB on Linux
        let peak = peakRSS()
        let start = Date()
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: file)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains(file.path) && m.contains("30000×30000") && m.contains("budget of 89478485"), m)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
        XCTAssertLessThan(peakRSS() - peak, 64 << 10, "peak memory grew by more than 64 MiB")
    }

    func testPixelBudgetIsConfigurable() throws {
        // rgb.png and baseline.jpg are 6×4 = 24 pixels.
        for n in ["rgb.png", "baseline.jpg", "progressive.jpg"] {
            let bytes = try fixture(n)
            XCTAssertNil(decodeError(bytes, name: n, limits: try ImageLimits(maxPixels: 24)), n)
            let m = decodeError(bytes, name: n, limits: try ImageLimits(maxPixels: 23)) ?? ""
            XCTAssertTrue(m.contains(n) && m.contains("6×4") && m.contains("budget of 23"), m)
        }
        XCTAssertThrowsError(try ImageLimits(maxPixels: 0)) { XCTAssertTrue("\($0)".contains("max_image_pixels")) }
        XCTAssertThrowsError(try ImageLimits(maxJPEGScans: -1)) { XCTAssertTrue("\($0)".contains("max_jpeg_scans")) }
        XCTAssertThrowsError(try ImageLimits(maxPixels: Int.max)) { XCTAssertTrue("\($0)".contains("max_image_pixels = \(Int.max)")) }
        XCTAssertThrowsError(try ImageLimits(maxFileBytes: 1 << 40)) { XCTAssertTrue("\($0)".contains("max_image_bytes")) }
        XCTAssertEqual(ImageLimits.standard.maxPixels, 89_478_485)
    }

    /// A JPEG header declaring 60000×60000 (libjpeg's maximum is 65500) is refused from the header.
    func testHugeDeclaredJPEGIsRefusedFromTheHeader() throws {
        var bytes = try fixture("baseline.jpg")
        // SOF0: FF C0, length, precision, then height and width (16-bit big-endian).
        let sof = try XCTUnwrap((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes[sof + 5] = 0xEA; bytes[sof + 6] = 0x60   // 60000
        bytes[sof + 7] = 0xEA; bytes[sof + 8] = 0x60
        let start = Date()
        let m = decodeError(bytes, name: "huge.jpg") ?? ""
        XCTAssertTrue(m.contains("huge.jpg") && m.contains("60000×60000") && m.contains("budget"), m)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
    }

    func testDamagedPNGsAreErrorsNamingTheFile() throws {
        let good = try fixture("rgb.png")
        var cases: [(String, [UInt8], String)] = [
            ("zero-width.png", Self.png(width: 0, height: 4, idat: [0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), "width"),
            ("zero-height.png", Self.png(width: 4, height: 0, idat: [0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), "height"),
            ("truncated.png", Array(good.prefix(good.count / 2)), "end of data"),
            ("header-only.png", Array(good.prefix(20)), "the file ends inside chunk 'IHDR'"),
            ("magic.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0B] + good.dropFirst(8), "not a JPEG or PNG"),
        ]
        var crc = good
        crc[29] ^= 0x01   // last byte of IHDR's CRC (8 signature + 4 length + 4 type + 13 data)
        cases.append(("crc.png", crc, "CRC"))
        for (name, bytes, reason) in cases {
            let m = decodeError(bytes, name: name)
            XCTAssertNotNil(m, name)
            XCTAssertTrue(m?.contains(name) == true && m?.contains(reason) == true, "\(name): \(m ?? "decoded")")
        }
    }

    func testDamagedJPEGsAreErrorsNamingTheFile() throws {
        let good = try fixture("progressive.jpg")
        for cut in [2, 3, 20, good.count / 3, good.count - 2] {
            let m = decodeError(Array(good.prefix(cut)), name: "cut\(cut).jpg")
            XCTAssertTrue(m?.contains("cut\(cut).jpg") == true, "\(cut): \(m ?? "decoded")")
        }
    }

    /// libpng and libjpeg print to stderr by default; through png_image and TurboJPEG they must not.
    func testDecoderErrorsPrintNothing() throws {
        let log = dir.appendingPathComponent("stderr.txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let fd = open(log.path, O_WRONLY)
        let saved = dup(2)
        fflush(stderr)
        dup2(fd, 2)
        var rng = RandomGenerator(seed: 20)
        var errors = 0
        for n in ["rgb.png", "rgba.png", "palette.png", "baseline.jpg", "progressive.jpg", "cmyk.jpg", "exif6.jpg"] {
            let good = try fixture(n)
            for cut in stride(from: 1, to: good.count, by: max(1, good.count / 25)) where decodeError(Array(good.prefix(cut)), name: n) != nil {
                errors += 1
            }
            for _ in 0..<60 {
                var d = good
                for _ in 0..<4 { d[8 + rng.nextInt(below: d.count - 8)] = UInt8(rng.nextInt(below: 256)) }
                if decodeError(d, name: n) != nil { errors += 1 }
            }
        }
        fflush(stderr)
        dup2(saved, 2)
        close(saved)
        close(fd)
        XCTAssertGreaterThan(errors, 100)
        XCTAssertEqual(try String(contentsOf: log, encoding: .utf8), "")
    }

    // MARK: Files

    func testFilesAreBoundedAndMustBeRegular() throws {
        // A sparse 257 MiB file: refused from its size, not read.
        let big = dir.appendingPathComponent("big.png")
        FileManager.default.createFile(atPath: big.path, contents: nil)
        let h = try FileHandle(forWritingTo: big)
        try h.truncate(atOffset: UInt64(257 << 20))
        try h.close()
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: big)) { e in
            XCTAssertTrue("\(e)".contains(big.path) && "\(e)".contains("more than the limit of 268435456 bytes"), "\(e)")
        }
        let small = try fixture("rgb.png")
        XCTAssertThrowsError(try ImageDecoder.decode(data: Data(small), name: "rgb.png", limits: try ImageLimits(maxFileBytes: small.count - 1)))
        XCTAssertNoThrow(try ImageDecoder.decode(data: Data(small), name: "rgb.png", limits: try ImageLimits(maxFileBytes: small.count)))

        // A FIFO named like an image: refused at once (opening it for reading would wait for a writer).
        let fifo = dir.appendingPathComponent("pipe.jpg")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: fifo)) { e in
            XCTAssertTrue(e is ImageDecodingError && "\(e)".contains(fifo.path) && "\(e)".contains("FIFO"), "\(e)")
        }
        let folder = dir.appendingPathComponent("folder.png")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: folder)) { XCTAssertTrue("\($0)".contains("directory"), "\($0)") }
    }

    // MARK: JPEG scans

    /// The fixture's segments up to its first SOS, then `scans` copies of its first scan (header
    /// and entropy data), then EOI: a progressive file with as many scans as asked.
    func progressive(scans: Int) throws -> [UInt8] {
        let good = try fixture("progressive.jpg")
        var i = 2, firstSOS = -1
        while i + 4 <= good.count, good[i] == 0xFF {
            if good[i + 1] == 0xDA { firstSOS = i; break }
            i += 2 + (Int(good[i + 2]) << 8 | Int(good[i + 3]))
        }
        XCTAssertGreaterThan(firstSOS, 0)
        var end = firstSOS + 2 + (Int(good[firstSOS + 2]) << 8 | Int(good[firstSOS + 3]))
        while !(good[end] == 0xFF && good[end + 1] != 0 && !(0xD0...0xD7).contains(good[end + 1])) { end += 1 }
        let scan = Array(good[firstSOS..<end])
        return Array(good[..<firstSOS]) + Array([[UInt8]](repeating: scan, count: scans).joined()) + [0xFF, 0xD9]
    }

    func testProgressiveScanLimit() throws {
        let many = try progressive(scans: 60)
        XCTAssertEqual(JPEGScans.count(many.withUnsafeBytes { $0 }, limit: 1000), 60)
        let m = decodeError(many, name: "scans.jpg", limits: try ImageLimits(maxJPEGScans: 50)) ?? ""
        XCTAssertTrue(m.contains("scans.jpg") && m.contains("more than 50 progressive scans"), m)
        // The default limit of 500: 5000 scans are refused before libjpeg sees them, in far less than a second.
        let start = Date()
        let m2 = decodeError(try progressive(scans: 5000), name: "scans.jpg") ?? ""
        XCTAssertTrue(m2.contains("more than 500 progressive scans"), m2)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
        // Real files count as libjpeg sees them and decode unchanged at their own count.
        let real = try fixture("progressive.jpg")
        let n = real.withUnsafeBytes { JPEGScans.count($0, limit: 1000) }
        XCTAssertGreaterThan(n, 2)
        XCTAssertNil(decodeError(real, name: "progressive.jpg", limits: try ImageLimits(maxJPEGScans: n)))
        XCTAssertNotNil(decodeError(real, name: "progressive.jpg", limits: try ImageLimits(maxJPEGScans: n - 1)))
        XCTAssertEqual(try fixture("baseline.jpg").withUnsafeBytes { JPEGScans.count($0, limit: 1000) }, 1)
    }

    /// Stuffed bytes, fill bytes and restart markers inside entropy-coded data are not markers.
    func testScanCountSkipsEntropyCodedData() {
        let sos: [UInt8] = [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]
        let data: [UInt8] = [0x12, 0xFF, 0x00, 0xDA, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0x78, 0xFF, 0x00, 0xFF, 0x00]
        let stream: [UInt8] = [0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0xFF, 0xDA] + sos + data + [0xFF, 0xFF] + sos + data + [0xFF, 0xD9] + sos
        XCTAssertEqual(stream.withUnsafeBytes { JPEGScans.count($0, limit: 100) }, 2)
        // A scan header whose length runs past the end, or garbage: no crash, no count beyond what is there.
        XCTAssertEqual([UInt8]([0xFF, 0xD8, 0xFF, 0xDA, 0xFF]).withUnsafeBytes { JPEGScans.count($0, limit: 100) }, 0)
        XCTAssertEqual([UInt8]([0xFF, 0xD8, 0xFF]).withUnsafeBytes { JPEGScans.count($0, limit: 100) }, 0)
        // Counting stops once past the limit.
        let many: [UInt8] = [0xFF, 0xD8] + Array([[UInt8]](repeating: sos + [1, 2, 3], count: 1000).joined())
        XCTAssertEqual(many.withUnsafeBytes { JPEGScans.count($0, limit: 10) }, 11)
    }
}
