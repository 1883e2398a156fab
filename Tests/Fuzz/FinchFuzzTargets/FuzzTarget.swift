import Foundation
import FinchTensor
import FinchNN
import FinchData
import FinchIO
import FinchTrain

/// One reader of outside input, driven by arbitrary bytes. Shared by the libFuzzer binary
/// (`finch-fuzz`, built with `-sanitize=fuzzer`) and the replay tests, so a saved crasher is
/// replayed through exactly the code that found it.
///
/// `run` returning or throwing is the expected outcome for any input: a thrown error is the
/// reader refusing the bytes. Only a signal, a sanitizer report, a hang or a runaway
/// allocation is a finding.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case safetensors, pth, hdf5, png, jpeg, config

    /// Path-based readers get the bytes through one reused temporary file per process.
    var fileExtension: String {
        switch self {
        case .safetensors: return "safetensors"
        case .pth: return "pth"
        case .hdf5: return "h5"
        case .png: return "png"
        case .jpeg: return "jpg"
        case .config: return "yaml"
        }
    }

    public func run(_ bytes: Data) throws {
        switch self {
        case .safetensors: try Self.safetensors(try FuzzInputFile.write(bytes, ext: fileExtension))
        case .pth: try Self.pth(try FuzzInputFile.write(bytes, ext: fileExtension))
        case .hdf5: try Self.hdf5(try FuzzInputFile.write(bytes, ext: fileExtension))
        case .png: try Self.image(PNGChecksums.fixed(bytes), name: "fuzz.png")
        case .jpeg: try Self.image(bytes, name: "fuzz.jpg")
        case .config: try Self.config(bytes)
        }
    }

    // Each reader is driven the way the CLI drives it: open, then touch every tensor/value,
    // since most of the damage in a header only shows once a tensor is materialised.

    static func safetensors(_ url: URL) throws {
        let f = try SafeTensorsFile(contentsOf: url)
        for name in f.names {
            guard let info = f.info(name) else { continue }
            if info.dtype.isInteger { _ = try f.int64s(name) } else { _ = try f.convertedTensor(name) }
            _ = try f.rawBytes(name)
        }
        _ = try FileInspection.describe(url)
    }

    static func pth(_ url: URL) throws {
        for (_, value) in try TorchCheckpoint.read(url) { touch(value) }
        _ = try FileInspection.describe(url)
    }

    static func hdf5(_ url: URL) throws {
        // Each reader on its own: one refusing the file must not hide a crash in the next.
        var firstError: Error?
        func attempt(_ body: () throws -> Void) { do { try body() } catch { if firstError == nil { firstError = error } } }
        attempt { _ = try FileInspection.describe(url) }
        attempt { for (_, value) in try WeightsFile.read(url).state { touch(value) } }
        attempt { _ = try Checkpoint.read(url) }
        if let firstError { throw firstError }
    }

    static func image(_ bytes: Data, name: String) throws {
        var firstError: Error?
        for target in [nil, 32] as [Int?] {
            do {
                // Image's initializer checks the byte count; the ends are read so ASan sees
                // the buffer, without a sum over megapixels that would read as a hang.
                let image = try ImageDecoder.decode(data: bytes, name: name, targetShortSide: target)
                _ = (image.pixels.first ?? 0) &+ (image.pixels.last ?? 0)
            } catch { if firstError == nil { firstError = error } }
        }
        if let firstError { throw firstError }
    }

    /// The YAML text up to the first NUL byte; every NUL-separated piece after it is one
    /// `--set` override, so the fuzzer mutates the file and the command line together.
    static func config(_ bytes: Data) throws {
        let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
        let text = String(decoding: parts.first ?? Data(), as: UTF8.self)
        let overrides = parts.dropFirst().map { String(decoding: $0, as: UTF8.self) }
        // The same text as a timm args.yaml (`finch config from-timm`): whatever it converts must
        // be YAML that Finch's own reader takes or refuses with a typed error.
        if let converted = try? TimmArgsConversion.convert(text, source: "fuzz-args.yaml") {
            _ = try? TrainConfig.parse(converted.yaml, source: "converted.yaml", overrides: [])
        }
        let cfg = try TrainConfig.parse(text, source: "fuzz.yaml", overrides: overrides)
        _ = cfg.resolvedYAML.count
    }

    static func touch(_ value: StateValue) {
        switch value {
        case .float(let t): _ = t.scalars.reduce(0, +)
        case .int64(let v, _): _ = v.reduce(0, &+)
        }
    }
}

/// The reused input file of this process (one per process, so libFuzzer's `-fork`/`-jobs`
/// workers do not share it). Written by rename, so a reader still holding a mapping of the
/// previous input never sees it change under it.
enum FuzzInputFile {
    static func write(_ bytes: Data, ext: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("finch-fuzz-\(getpid()).\(ext)")
        try bytes.write(to: url, options: .atomic)
        return url
    }
}

/// libpng rejects a chunk whose CRC does not match, so almost every mutation of a PNG would die
/// at the first checksum; recomputing them lets the fuzzer reach the header and pixel code.
enum PNGChecksums {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func fixed(_ data: Data) -> Data {
        var b = [UInt8](data)
        var i = 8
        // Chunk: 4-byte big-endian length, 4-byte type, data, 4-byte CRC over type and data.
        while i + 12 <= b.count {
            let length = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let end = i + 8 + length
            guard length <= b.count, end + 4 <= b.count else { break }
            let c = crc(b[(i + 4)..<end])
            b[end] = UInt8(c >> 24); b[end + 1] = UInt8(c >> 16 & 0xFF)
            b[end + 2] = UInt8(c >> 8 & 0xFF); b[end + 3] = UInt8(c & 0xFF)
            i = end + 4
        }
        return Data(b)
    }
}
