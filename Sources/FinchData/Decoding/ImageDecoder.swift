import Foundation
import FinchTensor
import CPNG
import CTurboJPEG

/// Why an image could not be read, naming the file.
public struct ImageDecodingError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let reason: String
    public var description: String { "\(file): cannot decode image (\(reason))" }
}

/// JPEG (libjpeg-turbo) and PNG (libpng) into 8-bit RGB. The format is sniffed from the bytes,
/// not the extension; EXIF orientation is applied to JPEGs; a JPEG much larger than needed is
/// decoded at 1/2, 1/4 or 1/8 scale in the DCT domain.
///
/// Every input is bounded by `limits` (file size, declared width × height, JPEG scans; see
/// `ImageLimits`) before the decoder allocates for it. Both libraries are driven through APIs that
/// report errors as return values (libpng's simplified `png_image`, TurboJPEG), whose own
/// setjmp/longjmp handling stays inside C and which keep warnings in their message buffers
/// rather than printing them, so a damaged file is an `ImageDecodingError` naming it.
public enum ImageDecoder {
    /// Reads the file at `url` (a regular file only, opened without blocking, no larger than
    /// `limits.maxFileBytes`) and decodes it.
    public static func decode(contentsOf url: URL, targetShortSide: Int? = nil, limits: ImageLimits = .standard) throws -> Image {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(url.path, what: "image", limit: limits.maxFileBytes) } catch let e as InputFileError {
            throw ImageDecodingError(file: url.path, reason: reason(e))
        }
        return try bytes.withUnsafeBytes { try decode(bytes: $0, name: url.path, targetShortSide: targetShortSide, limits: limits) }
    }

    public static func decode(data: Data, name: String, targetShortSide: Int? = nil, limits: ImageLimits = .standard) throws -> Image {
        try data.withUnsafeBytes { try decode(bytes: $0, name: name, targetShortSide: targetShortSide, limits: limits) }
    }

    /// Decodes encoded bytes in memory; `name` is the file named in errors.
    public static func decode(bytes: UnsafeRawBufferPointer, name: String, targetShortSide: Int? = nil,
                              limits: ImageLimits = .standard) throws -> Image {
        guard bytes.count <= limits.maxFileBytes else {
            throw ImageDecodingError(file: name, reason: "\(bytes.count) bytes, more than the limit of \(limits.maxFileBytes) bytes")
        }
        if bytes.starts(with: [0xFF, 0xD8]) { return try decodeJPEG(bytes, name: name, targetShortSide: targetShortSide, limits: limits) }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try decodePNG(bytes, name: name, limits: limits) }
        throw ImageDecodingError(file: name, reason: bytes.isEmpty ? "empty file" : "not a JPEG or PNG file")
    }

    /// InputFileError in words that do not repeat the path (ImageDecodingError names it).
    static func reason(_ e: InputFileError) -> String {
        switch e {
        case .missing: return "unreadable: no such file"
        case let .notRegular(_, kind, _): return "unreadable: a \(kind), not a regular file"
        case let .unreadable(_, _, why): return "unreadable: \(why)"
        case let .tooLarge(_, _, size, limit): return "\(size) bytes, more than the limit of \(limit) bytes"
        }
    }

    /// Refuses a declared size above the pixel budget, before anything is allocated for it.
    static func checkPixels(width w: Int, height h: Int, name: String, limits: ImageLimits) throws {
        guard w > 0, h > 0 else { throw ImageDecodingError(file: name, reason: "declares a size of \(w)×\(h) pixels") }
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        guard !overflow, pixels <= limits.maxPixels else {
            throw ImageDecodingError(file: name, reason: "declares \(w)×\(h) pixels, more than the budget of \(limits.maxPixels) "
                                     + "(ImageLimits.maxPixels, Pillow's MAX_IMAGE_PIXELS)")
        }
    }

    // MARK: JPEG

    static func decodeJPEG(_ raw: UnsafeRawBufferPointer, name: String, targetShortSide: Int?, limits: ImageLimits) throws -> Image {
        let scans = JPEGScans.count(raw, limit: limits.maxJPEGScans)
        guard scans <= limits.maxJPEGScans else {
            throw ImageDecodingError(file: name, reason: "more than \(limits.maxJPEGScans) progressive scans (ImageLimits.maxJPEGScans)")
        }
        guard let tj = tjInitDecompress() else { throw ImageDecodingError(file: name, reason: "libjpeg-turbo could not start") }
        defer { tjDestroy(tj) }
        func failure() -> ImageDecodingError { ImageDecodingError(file: name, reason: String(cString: tjGetErrorStr2(tj))) }
        // Callers have checked that raw starts with the two-byte SOI, so it has a base address.
        guard let src = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw ImageDecodingError(file: name, reason: "empty file") }
        let size = UInt(raw.count)
        var w: Int32 = 0, h: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(tj, src, size, &w, &h, &subsamp, &colorspace) == 0 else { throw failure() }
        // The full size, not the DCT-scaled one: a progressive decode keeps full-size coefficients.
        try checkPixels(width: Int(w), height: Int(h), name: name, limits: limits)
        // The smallest DCT scale whose output still covers the target (scales sorted large to small).
        var sw = w, sh = h
        if let target = targetShortSide, target > 0 {
            var n: Int32 = 0
            if let factors = tjGetScalingFactors(&n) {
                for i in 0..<Int(n) {
                    let f = factors[i]
                    guard f.num <= f.denom else { continue }
                    let cw = (w * f.num + f.denom - 1) / f.denom, ch = (h * f.num + f.denom - 1) / f.denom
                    if min(cw, ch) >= Int32(target) && Int64(cw) * Int64(ch) < Int64(sw) * Int64(sh) { sw = cw; sh = ch }
                }
            }
        }
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let channels = cmyk ? 4 : 3
        var pixels = [UInt8](repeating: 0, count: Int(sw) * Int(sh) * channels)
        // Truncated or corrupt data is a warning to libjpeg (it fills grey); users want to know.
        // LIMITSCANS (a fixed 500) backs up the scan count above when the budget allows it.
        let flags = Int32(TJFLAG_STOPONWARNING) | (limits.maxJPEGScans <= 500 ? Int32(TJFLAG_LIMITSCANS) : 0)
        let rc = pixels.withUnsafeMutableBufferPointer { dst in
            tjDecompress2(tj, src, size, dst.baseAddress, sw, 0, sh, cmyk ? Int32(TJPF_CMYK.rawValue) : Int32(TJPF_RGB.rawValue), flags)
        }
        guard rc == 0 else { throw failure() }
        if cmyk {
            // Adobe (the common writer of CMYK JPEGs) stores inverted CMYK: R = C·K/255.
            var rgb = [UInt8](repeating: 0, count: Int(sw) * Int(sh) * 3)
            for i in 0..<(Int(sw) * Int(sh)) {
                let k = Int(pixels[4 * i + 3])
                rgb[3 * i] = UInt8(Int(pixels[4 * i]) * k / 255)
                rgb[3 * i + 1] = UInt8(Int(pixels[4 * i + 1]) * k / 255)
                rgb[3 * i + 2] = UInt8(Int(pixels[4 * i + 2]) * k / 255)
            }
            pixels = rgb
        }
        let image = Image(width: Int(sw), height: Int(sh), pixels: pixels)
        return Orientation.apply(exifOrientation(raw), to: image)
    }

    /// EXIF orientation tag (0x0112) from the APP1 segment, 1 when absent or unreadable.
    static func exifOrientation(_ b: UnsafeRawBufferPointer) -> Int {
        var i = 2
        while i + 4 <= b.count, b[i] == 0xFF {
            let marker = b[i + 1]
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if marker == 0xDA || len < 2 { break }
            if marker == 0xE1, i + 4 + len <= b.count + 2, len >= 16,
               b[i + 4] == 0x45, b[i + 5] == 0x78, b[i + 6] == 0x69, b[i + 7] == 0x66 {
                let t = i + 10   // TIFF header
                guard t + 8 <= b.count else { return 1 }
                let little = b[t] == 0x49
                func u16(_ o: Int) -> Int { guard o + 2 <= b.count else { return 0 }; return little ? Int(b[o]) | Int(b[o + 1]) << 8 : Int(b[o]) << 8 | Int(b[o + 1]) }
                func u32(_ o: Int) -> Int { guard o + 4 <= b.count else { return 0 }; return little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2) }
                let ifd = t + u32(t + 4)
                let entries = u16(ifd)
                for e in 0..<min(entries, 64) {
                    let entry = ifd + 2 + e * 12
                    if u16(entry) == 0x0112 {
                        let v = u16(entry + 8)
                        return (1...8).contains(v) ? v : 1
                    }
                }
                return 1
            }
            i += 2 + len
        }
        return 1
    }

    // MARK: PNG

    static func decodePNG(_ data: UnsafeRawBufferPointer, name: String, limits: ImageLimits) throws -> Image {
        if let problem = PNGChunks.layoutProblem(data) { throw ImageDecodingError(file: name, reason: problem) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        // Reads the signature and the chunks up to the first IDAT only; no pixel memory yet.
        let ok = png_image_begin_read_from_memory(&image, data.baseAddress, data.count)
        guard ok != 0 else {
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            throw ImageDecodingError(file: name, reason: message)
        }
        // Read with alpha and drop it afterwards, as PIL's convert("RGB") does (no compositing).
        image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)   // PNG_FORMAT_RGBA
        let w = Int(image.width), h = Int(image.height)
        let rgbaBytes: Int
        do {
            try checkPixels(width: w, height: h, name: name, limits: limits)
            // A caller's budget may be as large as Int.max; the byte count is checked on its own.
            guard let n = checkedByteCount(shape: [h, w], elementSize: 4) else {
                throw ImageDecodingError(file: name, reason: "\(w)×\(h) RGBA pixels overflow a byte count")
            }
            rgbaBytes = n
        } catch {
            png_image_free(&image)
            throw error
        }
        var rgba = [UInt8](repeating: 0, count: rgbaBytes)
        let done = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard done != 0 else {
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            throw ImageDecodingError(file: name, reason: message)
        }
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            rgb[3 * i] = rgba[4 * i]
            rgb[3 * i + 1] = rgba[4 * i + 1]
            rgb[3 * i + 2] = rgba[4 * i + 2]
        }
        return Image(width: w, height: h, pixels: rgb)
    }
}

/// The eight EXIF orientations as flips and transposes.
enum Orientation {
    static func apply(_ o: Int, to im: Image) -> Image {
        guard o != 1 else { return im }
        let w = im.width, h = im.height
        let swap = o >= 5
        let ow = swap ? h : w, oh = swap ? w : h
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        im.pixels.withUnsafeBufferPointer { src in
            for y in 0..<oh {
                for x in 0..<ow {
                    // Source pixel for output (x, y), per EXIF's definitions.
                    let (sx, sy): (Int, Int)
                    switch o {
                    case 2: (sx, sy) = (w - 1 - x, y)
                    case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                    case 4: (sx, sy) = (x, h - 1 - y)
                    case 5: (sx, sy) = (y, x)
                    case 6: (sx, sy) = (y, h - 1 - x)
                    case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                    case 8: (sx, sy) = (w - 1 - y, x)
                    default: (sx, sy) = (x, y)
                    }
                    let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                    out[d] = src[s]; out[d + 1] = src[s + 1]; out[d + 2] = src[s + 2]
                }
            }
        }
        return Image(width: ow, height: oh, pixels: out)
    }
}
