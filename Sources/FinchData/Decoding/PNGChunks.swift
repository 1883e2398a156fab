/// Checks the chunk layout of a PNG held in memory before libpng reads it. libpng allocates a
/// buffer of each ancillary chunk's *declared* length (iTXt, zTXt, iCCP, …) before it reads the
/// bytes, and the simplified `png_image` API cannot set `png_set_chunk_malloc_max`; so a
/// 100-byte file declaring a 1.7 GB text chunk asked for 1.7 GB. Every declared length must fit
/// in what is left of the file, which bounds libpng's chunk buffers by the file's size (itself
/// bounded by `ImageLimits.maxFileBytes`).
enum PNGChunks {
    /// nil when every chunk up to IEND (or the end of the data) fits in the file; otherwise a
    /// reason naming the chunk. A missing IEND is left for libpng to report as truncation.
    static func layoutProblem(_ b: UnsafeRawBufferPointer) -> String? {
        let n = b.count
        var i = 8   // after the signature, which libpng checks
        while i + 8 <= n {
            let length = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            let type = String(decoding: [b[i + 4], b[i + 5], b[i + 6], b[i + 7]].map { (0x20...0x7E).contains($0) ? $0 : 0x3F },
                              as: UTF8.self)
            // PNG caps lengths at 2^31 − 1; data and CRC must lie within the file.
            guard length <= 0x7FFF_FFFF, length <= n - i - 12 else {
                return "the file ends inside chunk '\(type)' at byte \(i): it declares \(length) bytes, \(max(0, n - i - 12)) are left"
            }
            if type == "IEND" { return nil }
            i += 12 + length
        }
        return nil
    }
}
