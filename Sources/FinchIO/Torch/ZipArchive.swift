import Foundation
import FinchTensor

/// Enough of the ZIP format to read what `torch.save` writes: the central directory (with
/// ZIP64 extensions for large files) and stored (uncompressed) members, memory-mapped.
/// Compressed or encrypted members are refused when read: torch.save never writes them.
///
/// Every offset and length comes from the file, so each is checked before use: records lie
/// inside the file, member data lies before the central directory and no two members share
/// bytes, the entry count is bounded by the directory's size, and ZIP64 values must fit Int.
struct ZipArchive {
    struct Entry {
        let name: String
        /// File offset of the member's bytes (past its local header).
        let offset: Int
        let size: Int
        let uncompressedSize: Int
        let method: UInt16
        let flags: UInt16
        let localHeader: Int
    }

    let path: String
    private let file: MappedFile
    private(set) var entries: [String: Entry] = [:]
    /// Member names in central-directory order.
    private(set) var names: [String] = []

    /// The smallest a central-directory entry can be (its fixed part).
    static let centralEntrySize = 46
    static let localHeaderSize = 30

    static func isZip(_ url: URL) -> Bool {
        (try? fileHead(url.path, count: 4, what: "weights file")) == [0x50, 0x4B, 0x03, 0x04]
    }

    init(url: URL) throws {
        path = url.path
        do { file = try MappedFile(path: path, what: "PyTorch file") } catch let e as InputFileError {
            throw TorchFileError(file: path, reason: inputFileReason(e))
        }
        try readDirectory()
    }

    /// An archive in memory (a copy is kept); `name` stands for the path in messages.
    init(bytes: Data, name: String) throws {
        path = name
        file = bytes.withUnsafeBytes { MappedFile(copying: $0) }
        try readDirectory()
    }

    var size: Int { file.size }
    func fail(_ reason: String) -> TorchFileError { TorchFileError(file: path, reason: reason) }

    // Little-endian fields; every read is bounds-checked against the file.
    private func bytes(_ o: Int, _ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard o >= 0, n >= 0, n <= file.size, o <= file.size - n else {
            throw fail("ZIP \(what) at byte \(o) lies outside the file of \(file.size) bytes (truncated or corrupt)")
        }
        return file.bytes(o..<(o + n))
    }
    private func u16(_ o: Int, _ what: String) throws -> Int {
        let b = try bytes(o, 2, what)
        return Int(b[0]) | Int(b[1]) << 8
    }
    private func u32(_ o: Int, _ what: String) throws -> Int {
        let b = try bytes(o, 4, what)
        return (0..<4).reduce(0) { $0 | Int(b[$1]) << (8 * $1) }
    }
    /// A ZIP64 value, which must fit Int to be an offset or a size at all.
    private func u64(_ o: Int, _ what: String) throws -> Int {
        let b = try bytes(o, 8, what)
        let v = (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[$1]) << (8 * UInt64($1)) }
        guard let i = Int(exactly: v) else { throw fail("ZIP64 \(what) is \(v), beyond any file size") }
        return i
    }

    private mutating func readDirectory() throws {
        let n = file.size
        guard n >= 22 else { throw fail("too short to be a ZIP archive (\(n) bytes)") }
        // End of central directory: the last signature within the final 64 KiB + 22 bytes.
        var eocd = -1
        var i = n - 22
        while i >= max(0, n - 22 - 65_535) {
            if try u32(i, "end record") == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("no ZIP end-of-directory record (truncated file?)") }
        var count = try u16(eocd + 10, "entry count"), dirSize = try u32(eocd + 12, "directory size")
        var dirOffset = try u32(eocd + 16, "directory offset")
        // The directory must end where the end records begin.
        var dirLimit = eocd
        if count == 0xFFFF || dirSize == 0xFFFF_FFFF || dirOffset == 0xFFFF_FFFF {
            guard eocd >= 20, try u32(eocd - 20, "ZIP64 locator") == 0x0706_4B50 else {
                throw fail("ZIP end record points to a ZIP64 record that is missing")
            }
            let z = try u64(eocd - 20 + 8, "end-record offset")
            guard z <= eocd - 20 - 56, try u32(z, "ZIP64 end record") == 0x0606_4B50 else {
                throw fail("broken ZIP64 end-of-directory record (offset \(z))")
            }
            count = try u64(z + 32, "entry count"); dirSize = try u64(z + 40, "directory size")
            dirOffset = try u64(z + 48, "directory offset")
            dirLimit = z
        }
        guard dirOffset <= dirLimit, dirSize <= dirLimit - dirOffset else {
            throw fail("central directory (offset \(dirOffset), \(dirSize) bytes) lies outside the file (truncated?)")
        }
        // Each entry takes at least 46 bytes, so a count the directory cannot hold is refused
        // before anything is allocated for it.
        guard count <= dirSize / Self.centralEntrySize else {
            throw fail("ZIP directory claims \(count) entries but its \(dirSize) bytes hold at most \(dirSize / Self.centralEntrySize)")
        }
        let dirEnd = dirOffset + dirSize
        var p = dirOffset
        var spans: [(begin: Int, end: Int, name: String)] = []
        for _ in 0..<count {
            guard p <= dirEnd - Self.centralEntrySize, try u32(p, "directory entry") == 0x0201_4B50 else {
                throw fail("corrupt central directory entry at byte \(p)")
            }
            let flags = UInt16(try u16(p + 8, "flags")), method = UInt16(try u16(p + 10, "method"))
            var size = try u32(p + 20, "compressed size"), uncompressed = try u32(p + 24, "size")
            var local = try u32(p + 42, "local header offset")
            let nameLen = try u16(p + 28, "name length"), extraLen = try u16(p + 30, "extra length")
            let commentLen = try u16(p + 32, "comment length")
            let entryEnd = p + Self.centralEntrySize + nameLen + extraLen + commentLen
            guard entryEnd <= dirEnd else { throw fail("central directory entry at byte \(p) runs past the directory") }
            let nameBytes = try bytes(p + Self.centralEntrySize, nameLen, "name")
            let name = String(decoding: nameBytes, as: UTF8.self)
            // ZIP64 extra field: 64-bit values for the fields set to 0xFFFFFFFF, in this order,
            // each present only when its 32-bit field is saturated.
            var e = p + Self.centralEntrySize + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try u16(e, "extra field id"), len = try u16(e + 2, "extra field length")
                guard len <= extraEnd - e - 4 else { throw fail("member '\(name)': extra field \(id) runs past its entry") }
                if id == 0x0001 {
                    var q = e + 4
                    let fieldEnd = q + len
                    func next(_ what: String) throws -> Int {
                        guard q + 8 <= fieldEnd else { throw fail("member '\(name)': ZIP64 field lacks the \(what)") }
                        defer { q += 8 }
                        return try u64(q, "\(what) of '\(name)'")
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next("size") }
                    if size == 0xFFFF_FFFF { size = try next("compressed size") }
                    if local == 0xFFFF_FFFF { local = try next("local header offset") }
                }
                e += 4 + len
            }
            guard !name.isEmpty, entries[name] == nil else {
                throw fail(name.isEmpty ? "ZIP member at byte \(p) has an empty name" : "ZIP member '\(name)' appears twice")
            }
            guard local <= dirOffset - Self.localHeaderSize, try u32(local, "local header") == 0x0403_4B50 else {
                throw fail("member '\(name)' has no local header at byte \(local)")
            }
            let localNameLen = try u16(local + 26, "local name length"), localExtraLen = try u16(local + 28, "local extra length")
            guard localNameLen == nameLen, try bytes(local + Self.localHeaderSize, localNameLen, "local name")
                    .elementsEqual(nameBytes) else {
                throw fail("member '\(name)': its local header names another member")
            }
            let offset = local + Self.localHeaderSize + localNameLen + localExtraLen
            // Member data lies before the central directory.
            guard offset <= dirOffset, size <= dirOffset - offset else {
                throw fail("member '\(name)' (\(size) bytes at byte \(offset)) runs past its archive's data (truncated?)")
            }
            entries[name] = Entry(name: name, offset: offset, size: size, uncompressedSize: uncompressed,
                                  method: method, flags: flags, localHeader: local)
            names.append(name)
            spans.append((local, offset + size, name))
            p = entryEnd
        }
        // Members that share bytes are how zip bombs and parser-confusion files are made.
        spans.sort { $0.begin < $1.begin }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw fail("members '\(a.name)' and '\(b.name)' overlap")
        }
    }

    func has(_ name: String) -> Bool { entries[name] != nil }

    /// Runs `body` on a stored member's bytes, which stay valid only during the call (they are
    /// the mapped file itself, not a copy).
    func withMember<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let e = entries[name] else { throw fail("no member '\(name)' in the archive") }
        guard e.flags & 1 == 0 else { throw fail("member '\(name)' is encrypted; torch.save never encrypts") }
        guard e.method == 0 else {
            throw fail("member '\(name)' is compressed (method \(e.method)); only stored (uncompressed) members are read, as torch.save writes them — re-save the file with torch.save")
        }
        guard e.uncompressedSize == e.size else {
            throw fail("member '\(name)' is stored but its sizes disagree (\(e.size) vs \(e.uncompressedSize) bytes)")
        }
        return try withExtendedLifetime(file) { try body(file.bytes(e.offset..<(e.offset + e.size))) }
    }

    /// A member copied out of the mapping.
    func member(_ name: String) throws -> Data {
        try withMember(name) { raw in raw.isEmpty ? Data() : Data(bytes: raw.baseAddress!, count: raw.count) }
    }
}
