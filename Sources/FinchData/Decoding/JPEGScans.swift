#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counts the start-of-scan (SOS) markers of a JPEG by walking its marker stream, without
/// decoding. libjpeg-turbo 2.1 (Debian 12) has no configurable scan limit (3.0's
/// TJPARAM_SCANLIMIT), and a progressive file of thousands of near-empty scans makes the
/// decoder pass over every block once per scan. Walks the stream as libjpeg's marker reader
/// does: segments carry a 16-bit length; after an SOS the entropy-coded data runs to the next
/// 0xFF that is not a stuffed 0xFF00, a fill byte or a restart marker (RST0–7).
enum JPEGScans {
    /// The number of SOS markers, stopping as soon as it exceeds `limit` (so the walk is linear
    /// and ends early on a hostile file). Stops at EOI or at a malformed length, leaving those
    /// for the decoder to report.
    static func count(_ b: UnsafeRawBufferPointer, limit: Int) -> Int {
        let n = b.count
        guard n >= 2, let base = b.baseAddress else { return 0 }
        var scans = 0
        var i = 2   // after SOI
        while i < n {
            guard b[i] == 0xFF else {
                // Garbage between segments: libjpeg skips to the next 0xFF (with a warning).
                i = nextFF(base, from: i + 1, end: n)
                continue
            }
            var j = i + 1
            while j < n && b[j] == 0xFF { j += 1 }   // fill bytes before a marker
            guard j < n else { break }
            let marker = b[j]
            i = j + 1
            switch marker {
            case 0x00, 0x01, 0xD0...0xD7: continue   // stray stuffed byte, TEM, RSTn: no length
            case 0xD9: return scans                  // EOI
            default: break
            }
            guard i + 2 <= n else { break }
            let length = Int(b[i]) << 8 | Int(b[i + 1])
            guard length >= 2 else { break }
            i += length
            guard marker == 0xDA else { continue }
            scans += 1
            if scans > limit { return scans }
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), more 0xFF (fill)
            // then RSTn inside the data, or else by the marker that ends the scan.
            while i < n {
                let ff = nextFF(base, from: i, end: n)
                var k = ff + 1
                while k < n && b[k] == 0xFF { k += 1 }
                if k >= n { i = n; break }
                if b[k] == 0x00 || (0xD0...0xD7).contains(b[k]) { i = k + 1; continue }
                i = ff
                break
            }
        }
        return scans
    }

    /// Index of the next 0xFF at or after `from`, or `end`.
    private static func nextFF(_ base: UnsafeRawPointer, from: Int, end: Int) -> Int {
        guard from < end, let p = memchr(base + from, 0xFF, end - from) else { return end }
        return UnsafeRawPointer(p) - base
    }
}
