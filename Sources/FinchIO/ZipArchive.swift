import Foundation

/// Enough of the ZIP format to read what `torch.save` writes: the central directory (with
/// ZIP64 extensions for large files) and stored, uncompressed members, memory-mapped.
struct ZipArchive {
    struct Entry { let name: String; let offset: Int; let size: Int; let method: UInt16; let localHeader: Int }

    let path: String
    let data: Data
    private(set) var entries: [String: Entry] = [:]
    private(set) var names: [String] = []

    static func isZip(_ url: URL) -> Bool {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        return h.readData(ofLength: 4) == Data([0x50, 0x4B, 0x03, 0x04])
    }

    init(url: URL) throws {
        path = url.path
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TorchFileError(file: url.path, reason: "cannot read (\(error.localizedDescription))")
        }
        try readDirectory()
    }

    func u16(_ o: Int) -> Int { Int(data[data.startIndex + o]) | Int(data[data.startIndex + o + 1]) << 8 }
    func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
    func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
    func fail(_ reason: String) -> TorchFileError { TorchFileError(file: path, reason: reason) }

    private mutating func readDirectory() throws {
        let n = data.count
        guard n >= 22 else { throw fail("too short to be a ZIP archive") }
        // End of central directory: the last signature within the final 64 KiB + 22 bytes.
        var eocd = -1
        var i = n - 22
        while i >= max(0, n - 22 - 65_535) {
            if u32(i) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("no ZIP end-of-directory record (truncated file?)") }
        var count = u16(eocd + 10), dirSize = u32(eocd + 12), dirOffset = u32(eocd + 16)
        if (count == 0xFFFF || dirOffset == 0xFFFF_FFFF), eocd >= 20, u32(eocd - 20) == 0x0706_4B50 {
            let z = u64(eocd - 20 + 8)
            guard z + 56 <= n, u32(z) == 0x0606_4B50 else { throw fail("broken ZIP64 end-of-directory record") }
            count = u64(z + 32); dirSize = u64(z + 40); dirOffset = u64(z + 48)
        }
        guard dirOffset + dirSize <= n else { throw fail("central directory lies past the end of the file (truncated?)") }
        var p = dirOffset
        for _ in 0..<count {
            guard p + 46 <= n, u32(p) == 0x0201_4B50 else { throw fail("corrupt central directory entry at byte \(p)") }
            let method = UInt16(u16(p + 10))
            var size = u32(p + 20), local = u32(p + 42)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            guard p + 46 + nameLen + extraLen <= n else { throw fail("corrupt central directory entry at byte \(p)") }
            let name = String(decoding: data[(data.startIndex + p + 46)..<(data.startIndex + p + 46 + nameLen)], as: UTF8.self)
            // ZIP64 extra field: 64-bit sizes and offset for the fields set to 0xFFFFFFFF.
            var e = p + 46 + nameLen
            let end = e + extraLen
            while e + 4 <= end {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    // In order, each present only when its 32-bit field is saturated.
                    var q = e + 4
                    if u32(p + 24) == 0xFFFF_FFFF { q += 8 }                 // uncompressed size
                    if u32(p + 20) == 0xFFFF_FFFF { size = u64(q); q += 8 }  // compressed size
                    if local == 0xFFFF_FFFF { local = u64(q) }
                }
                e += 4 + len
            }
            guard local + 30 <= n, u32(local) == 0x0403_4B50 else { throw fail("member '\(name)' has no local header") }
            let offset = local + 30 + u16(local + 26) + u16(local + 28)
            entries[name] = Entry(name: name, offset: offset, size: size, method: method, localHeader: local)
            names.append(name)
            p += 46 + nameLen + extraLen + commentLen
        }
    }

    /// A stored member's bytes (torch.save does not compress).
    func member(_ name: String) throws -> Data {
        guard let e = entries[name] else { throw fail("no member '\(name)' in the archive") }
        guard e.method == 0 else { throw fail("member '\(name)' is compressed (method \(e.method)); torch.save writes stored members — re-save it with torch.save") }
        guard e.offset + e.size <= data.count else { throw fail("member '\(name)' runs past the end of the file (truncated?)") }
        return data[(data.startIndex + e.offset)..<(data.startIndex + e.offset + e.size)]
    }
}
