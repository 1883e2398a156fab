import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Large tensor buffers, carved from one reserved address range and given back to it between uses.
///
/// A training step allocates the same activations and gradients in the same order every step.
/// Left to malloc they fragment its heap: freed maps are split for other sizes and the heap grows
/// well past the most the tensors ever hold at once (ResNet18, batch 32: tensors peak at 378 MiB,
/// the heap reached 503 MiB and was still growing after four steps). A cache of whole mappings by
/// size, as this pool was, fixes that but misses whenever a size has no free block of its own:
/// ResNet50 training at 224 px mapped 34 new blocks (1.2 GB) a step, and the kernel's zeroing of
/// their pages was 7% of a step. Here the free space is ranges of one reserved address range: a request takes
/// the lowest free range that fits (first fit), and a freed block merges with its free neighbours.
/// Sizes need not match, and since a step's requests arrive in the same order at the same free
/// ranges, it finds the same places every time and maps nothing new. First fit also wastes less
/// than best fit here: replaying ResNet50's 224 px training steps, the used part's top settled
/// 160 MiB above the peak of live bytes with first fit, 238 MiB with best fit (the exact-size
/// cache: 1.2 GB of new mappings a step within the same limit, first fit 63 MiB).
///
/// Only when no free range fits does the used part grow at its top, populated by the kernel in
/// one call (the page zeroing is unavoidable, a fault per 4 KiB page is not: it was 3% of a
/// ResNet18 training step). Resident bytes stay within `limit` of the peak of live bytes: past it,
/// the tails of the largest free ranges are handed back to the kernel (their addresses stay free
/// ranges, repopulated when a request takes them).
enum BlockPool {
    /// Requests from this size up come from the pool; smaller ones stay with malloc.
    static let threshold = 256 << 10
    /// Sizes are rounded up to this, so the ranges stay page-aligned.
    static let granule = 16 << 10
    /// Resident bytes allowed beyond the peak of live bytes: at least 128 MiB or a sixteenth of the peak.
    /// Too little slack and memory is released only to be populated again on the next step: with
    /// 32 MiB, an evaluation-only loop of MobileViT-XXS spent 21% of its time in the kernel
    /// populating and unmapping pages (173 img/s; 263 img/s with 128 MiB). With a quarter of the
    /// peak, resident memory sat 763 MiB above the tensors' peak in ResNet50 training at 224 px.
    static func limit(peak: Int) -> Int { peak + max(minimumSlack, peak / 16) }
    /// Variable so tests can reach the limit with small tensors.
    static var minimumSlack = 128 << 20

    /// A span of the reserved range, as byte offsets from its start.
    private struct Span {
        var start: Int
        var length: Int
        var end: Int { start + length }
    }

    private struct State {
        /// The reserved address range (nil until first used, or if it could not be reserved).
        var base: UnsafeMutableRawPointer?
        var capacity = 0
        var reserveFailed = false
        /// Bytes from `base` that are mapped read-write; above it the range is reserved only.
        var top = 0
        /// Free spans below `top`, by address, never adjacent (neighbours merge).
        var free: [Span] = []
        /// Parts of free spans whose pages were handed back to the kernel, by address, never adjacent.
        var released: [Span] = []
        var releasedBytes = 0
        /// Bytes of blocks in use, each with its page for the start offset (see `color`).
        var usedBytes = 0
        /// Blocks mapped on their own because the reserved range was full.
        var outsideBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
        /// Times new pages were made resident (see `mappings`).
        var mappings = 0
        /// Requests served from a free span larger than the request.
        var trims = 0
        /// Blocks handed out, for their start offsets.
        var blocks = 0

        var residentBytes: Int { top - releasedBytes + outsideBytes }
        var cachedBytes: Int { top - releasedBytes - usedBytes }
    }
    private static let state = Mutex(State())

    static func rounded(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }

    /// Address space to reserve: far more than any machine's memory; only what is used is mapped.
    /// Halved until the system grants it (a `ulimit -v`), and past it blocks are mapped one by one.
    private static let reservation = 1 << 40
    private static let minimumReservation = 1 << 30

    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let length = rounded(bytes) + page
        let p = state.withLock { s -> UnsafeMutableRawPointer in
            s.liveBytes += length - page
            s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
            s.blocks += 1
            guard let base = reservedBase(&s), let start = place(length, in: &s, base: base) else {
                s.mappings += 1
                let base = s.base
                keepWithinLimit(&s, base: base, incoming: length)
                s.outsideBytes += length
                return mapOutside(length) + color(s.blocks)
            }
            s.usedBytes += length
            // By place, so a block handed out where it was before starts where it did.
            return base + start + color(start / page)
        }
        trace("a", p, length)
        return p
    }

    static func deallocate(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let length = rounded(bytes) + page
        let pageStart = Int(bitPattern: p) & ~(page - 1)
        trace("f", p, length)
        state.withLock { s in
            s.liveBytes -= length - page
            if let base = s.base, pageStart >= Int(bitPattern: base), pageStart < Int(bitPattern: base) + s.capacity {
                s.usedBytes -= length
                insertMerging(Span(start: pageStart - Int(bitPattern: base), length: length), into: &s.free)
            } else {
                s.outsideBytes -= length
                munmap(UnsafeMutableRawPointer(bitPattern: pageStart)!, length)
            }
        }
    }

    /// Unmaps every free range's pages and forgets the peak, e.g. after a large one-off evaluation.
    static func releaseCached() {
        state.withLock { s in
            guard let base = s.base else { s.peakLiveBytes = s.liveBytes; return }
            // A free span at the top goes back to being reserved only.
            if let last = s.free.last, last.end == s.top {
                s.free.removeLast()
                removeReleased(last, from: &s)
                unreserve(base + last.start, last.length)
                s.top = last.start
            }
            for span in s.free { release(span, from: &s, base: base) }
            s.peakLiveBytes = s.liveBytes
        }
    }

    /// Times the pool had new pages made resident (the used part grown, a released range taken
    /// again, a block mapped on its own): a repeating workload adds none once its first steps have run.
    static var mappings: Int { state.withLock { $0.mappings } }
    static var trims: Int { state.withLock { $0.trims } }
    /// Resident bytes of free ranges, waiting for requests.
    static var cachedBytes: Int { state.withLock { $0.cachedBytes } }
    static var liveBytes: Int { state.withLock { $0.liveBytes } }
    static var peakLiveBytes: Int { state.withLock { $0.peakLiveBytes } }
    /// Resident bytes of the pool: blocks in use (with their offset pages) and free ranges not released.
    static var residentBytes: Int { state.withLock { $0.residentBytes } }

    /// `FINCH_POOL_TRACE=FILE`: one line per request (`a ADDRESS LENGTH`) and release (`f …`), to
    /// replay a workload's sequence against other placement rules (`Benchmarks/pool_replay.py`).
    nonisolated(unsafe) private static let traceFile: UnsafeMutablePointer<FILE>? =
        ProcessInfoLite.environment("FINCH_POOL_TRACE").flatMap { fopen($0, "w") }
    private static func trace(_ kind: String, _ p: UnsafeMutableRawPointer, _ length: Int) {
        guard let f = traceFile else { return }
        fputs("\(kind) \(Int(bitPattern: p)) \(length)\n", f)
        fflush(f)
    }

    // MARK: placement

    /// The start of a span of `length` bytes taken from the free spans, growing the used part if none fits.
    /// Room is made before pages become resident, so the peak resident set stays within the limit too.
    private static func place(_ length: Int, in s: inout State, base: UnsafeMutableRawPointer) -> Int? {
        if let i = s.free.firstIndex(where: { $0.length >= length }) {
            let start = s.free[i].start
            if s.free[i].length == length { s.free.remove(at: i) } else {
                s.free[i].start += length
                s.free[i].length -= length
                s.trims += 1
            }
            let span = Span(start: start, length: length)
            keepWithinLimit(&s, base: base, incoming: releasedBytes(in: span, s.released))
            repopulate(span, in: &s, base: base)
            return start
        }
        // Nothing fits: extend the free span at the top, if there is one, by what it lacks.
        var top: Span?
        if let last = s.free.last, last.end == s.top { top = s.free.removeLast() }
        let start = top?.start ?? s.top
        let grow = start + length - s.top
        guard start + length <= s.capacity else {
            if let top { s.free.append(top) }
            return nil
        }
        keepWithinLimit(&s, base: base, incoming: grow + (top.map { releasedBytes(in: $0, s.released) } ?? 0))
        guard mapPopulated(base + s.top, grow) else {
            if let top { s.free.append(top) }
            return nil
        }
        if let top { repopulate(top, in: &s, base: base) }
        s.top += grow
        s.mappings += 1
        return start
    }

    /// Inserts a span into a sorted list of disjoint spans, merging it with the spans it touches.
    private static func insertMerging(_ span: Span, into list: inout [Span]) {
        var i = firstIndex(in: list, endingAfter: span.start)
        var merged = span
        if i > 0 && list[i - 1].end == merged.start {
            i -= 1
            merged = Span(start: list[i].start, length: merged.end - list[i].start)
            list.remove(at: i)
        }
        if i < list.count && list[i].start == merged.end {
            merged.length += list[i].length
            list.remove(at: i)
        }
        list.insert(merged, at: i)
    }

    /// The index of the first span whose end is past `offset` (binary search).
    private static func firstIndex(in list: [Span], endingAfter offset: Int) -> Int {
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].end <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    // MARK: residency

    /// Past the limit (counting `incoming` bytes about to become resident), hands the tails of the
    /// largest free spans back to the kernel until resident bytes are within it: tails, so that the
    /// part left still serves the smaller requests.
    private static func keepWithinLimit(_ s: inout State, base: UnsafeMutableRawPointer?, incoming: Int = 0) {
        guard let base else { return }
        while true {
            let excess = s.residentBytes + incoming - limit(peak: s.peakLiveBytes)
            guard excess > 0 else { return }
            var victim: Span?
            for span in s.free where span.length > (victim?.length ?? 0) && releasedBytes(in: span, s.released) < span.length {
                victim = span
            }
            guard let victim else { return }
            let before = s.releasedBytes
            let cut = min(victim.length, (excess + page - 1) & ~(page - 1))
            release(Span(start: victim.end - cut, length: cut), from: &s, base: base)
            // The tail was released already: the rest of the span goes.
            if s.releasedBytes == before { release(victim, from: &s, base: base) }
        }
    }

    private static func releasedBytes(in span: Span, _ released: [Span]) -> Int {
        var total = 0
        var i = firstIndex(in: released, endingAfter: span.start)
        while i < released.count && released[i].start < span.end {
            total += min(released[i].end, span.end) - max(released[i].start, span.start)
            i += 1
        }
        return total
    }

    /// Hands the resident pages of `span` (free) back to the kernel and records them as released.
    private static func release(_ span: Span, from s: inout State, base: UnsafeMutableRawPointer) {
        var pieces: [Span] = []
        var cursor = span.start
        var i = firstIndex(in: s.released, endingAfter: span.start)
        while cursor < span.end {
            guard i < s.released.count && s.released[i].start < span.end else {
                pieces.append(Span(start: cursor, length: span.end - cursor))
                break
            }
            let r = s.released[i]
            if r.start > cursor { pieces.append(Span(start: cursor, length: r.start - cursor)) }
            cursor = r.end
            i += 1
        }
        for piece in pieces {
            discardPages(base + piece.start, piece.length)
            insertMerging(piece, into: &s.released)
            s.releasedBytes += piece.length
        }
    }

    /// Populates the released pages inside `span` (about to be handed out) and forgets them as released.
    private static func repopulate(_ span: Span, in s: inout State, base: UnsafeMutableRawPointer) {
        guard s.releasedBytes > 0 else { return }
        var i = firstIndex(in: s.released, endingAfter: span.start)
        while i < s.released.count && s.released[i].start < span.end {
            let r = s.released[i]
            let lo = max(r.start, span.start), hi = min(r.end, span.end)
            populate(base + lo, hi - lo)
            s.mappings += 1
            s.releasedBytes -= hi - lo
            s.released.remove(at: i)
            if r.start < lo { s.released.insert(Span(start: r.start, length: lo - r.start), at: i); i += 1 }
            if hi < r.end { s.released.insert(Span(start: hi, length: r.end - hi), at: i); break }
        }
    }

    private static func removeReleased(_ span: Span, from s: inout State) {
        while let last = s.released.last, last.end > span.start {
            s.released.removeLast()
            s.releasedBytes -= last.length
            if last.start < span.start {
                let kept = Span(start: last.start, length: span.start - last.start)
                s.released.append(kept)
                s.releasedBytes += kept.length
            }
        }
    }

    // MARK: system calls

    private static func reservedBase(_ s: inout State) -> UnsafeMutableRawPointer? {
        if let base = s.base { return base }
        if s.reserveFailed { return nil }
        var size = reservation
        while size >= minimumReservation {
            var flags = MAP_PRIVATE | MAP_ANONYMOUS
            #if os(Linux)
            flags |= MAP_NORESERVE
            #endif
            if let p = mmap(nil, size, PROT_NONE, flags, -1, 0), p != MAP_FAILED {
                s.base = p
                s.capacity = size
                return p
            }
            size /= 2
        }
        s.reserveFailed = true
        return nil
    }

    /// Maps reserved addresses read-write with their pages populated.
    private static func mapPopulated(_ p: UnsafeMutableRawPointer, _ length: Int) -> Bool {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
        #if os(Linux)
        flags |= MAP_POPULATE
        #endif
        guard let q = mmap(p, length, PROT_READ | PROT_WRITE, flags, -1, 0), q != MAP_FAILED else { return false }
        return true
    }

    /// Returns addresses to being reserved only.
    private static func unreserve(_ p: UnsafeMutableRawPointer, _ length: Int) {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
        #if os(Linux)
        flags |= MAP_NORESERVE
        #endif
        _ = mmap(p, length, PROT_NONE, flags, -1, 0)
    }

    /// Gives pages back to the kernel; the addresses stay mapped and read as zeros when touched.
    private static func discardPages(_ p: UnsafeMutableRawPointer, _ length: Int) {
        #if os(Linux)
        _ = madvise(p, length, MADV_DONTNEED)
        #else
        _ = mmap(p, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        #endif
    }

    /// Faults released pages in at once rather than one by one on first touch.
    private static func populate(_ p: UnsafeMutableRawPointer, _ length: Int) {
        #if os(Linux)
        // MADV_POPULATE_WRITE (Linux 5.14); on older kernels the call fails and the pages fault on touch.
        _ = madvise(p, length, 23)
        #endif
    }

    private static func mapOutside(_ length: Int) -> UnsafeMutableRawPointer {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        #if os(Linux)
        flags |= MAP_POPULATE
        #endif
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: mapping \(length) bytes for a tensor failed (errno \(errno))")
        }
        return p
    }

    /// Blocks start on page boundaries, so without an offset every tensor's element i would sit
    /// at the same address modulo 4 KiB as every other's: a kernel streaming x and y together then
    /// hits the same L1 sets and the CPU's 4 KiB load/store aliasing. Each block starts at a
    /// different multiple of 64 bytes within its first page instead, as malloc's blocks happen to.
    /// Block lengths are an odd number of pages, so consecutive blocks of one size cycle through all 64.
    private static let page = 4096
    private static func color(_ n: Int) -> Int { (n * 17 % 64) * 64 }
}
