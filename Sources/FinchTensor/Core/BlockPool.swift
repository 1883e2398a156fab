import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Large tensor buffers, each its own mapping, cached by size between uses.
///
/// A training step allocates the same activations and gradients in the same order every step.
/// Left to malloc they fragment its heap: freed maps are split for other sizes and the heap grows
/// well past the most the tensors ever hold at once (ResNet18, batch 32: tensors peak at 378 MiB,
/// the heap reached 503 MiB and was still growing after four steps). Here a freed block waits for
/// the next request of its size, so a repeating step mostly reuses its own blocks. When a new block
/// is needed and the mapped total would pass `limit` (the peak of live bytes plus some slack), the
/// largest cached blocks are unmapped first, so resident memory stays within that slack of the peak.
/// New blocks are populated by the kernel in one call: the page zeroing is unavoidable, a fault
/// per 4 KiB page is not (it was 3% of a ResNet18 training step).
enum BlockPool {
    /// Requests from this size up come from the pool; smaller ones stay with malloc.
    static let threshold = 256 << 10
    /// Sizes are rounded up to this, so requests differing by a few elements share blocks.
    static let granule = 16 << 10
    /// Mapped bytes allowed beyond the peak of live bytes: at least 128 MiB or a sixteenth of the peak.
    /// Too little slack and blocks are unmapped only to be mapped again on the next step: with
    /// 32 MiB, an evaluation-only loop of MobileViT-XXS spent 21% of its time in the kernel
    /// populating and unmapping pages (173 img/s; 263 img/s with 128 MiB), and ResNet18 training
    /// re-mapped 243 MiB a step. With a quarter of the peak, as it was, resident memory sat
    /// 763 MiB above the tensors' peak in ResNet50 training at 224 px (263 MiB with a sixteenth).
    /// Past the limit a request cuts down a larger cached block rather than map a new one, so the
    /// smaller share costs few new mappings.
    static func limit(peak: Int) -> Int { peak + max(minimumSlack, peak / 16) }
    /// Variable so tests can reach the limit with small tensors.
    static var minimumSlack = 128 << 20

    private struct State {
        /// Cached blocks by rounded size; the most recently freed is reused first (warmest in cache).
        var cached: [Int: [UnsafeMutableRawPointer]] = [:]
        var cachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
        var mappings = 0
        /// Requests served by cutting down a larger cached block.
        var trims = 0
    }
    private static let state = Mutex(State())

    static func rounded(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }

    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = rounded(bytes)
        var evicted: [(pointer: UnsafeMutableRawPointer, size: Int)] = []
        var trimmed: (pointer: UnsafeMutableRawPointer, from: Int)?
        let (reused, mapping): (UnsafeMutableRawPointer?, Int) = state.withLock { s in
            s.liveBytes += size
            s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
            if let p = s.cached[size]?.popLast() {
                s.cachedBytes -= size
                return (p, 0)
            }
            let limit = limit(peak: s.peakLiveBytes)
            guard s.liveBytes + s.cachedBytes > limit else {
                s.mappings += 1
                return (nil, s.mappings)
            }
            // Over the limit, the nearest larger cached block is cut down to this size: its pages
            // are populated already, where a new mapping would have the kernel zero them again.
            if let larger = smallestCachedSize(s.cached, above: size) {
                let p = s.cached[larger]!.removeLast()
                s.cachedBytes -= larger
                s.trims += 1
                trimmed = (p, larger)
            }
            while s.liveBytes + s.cachedBytes > limit, let victim = largestCachedSize(s.cached) {
                evicted.append((s.cached[victim]!.removeLast(), victim))
                s.cachedBytes -= victim
            }
            if let trimmed { return (trimmed.pointer, 0) }
            s.mappings += 1
            return (nil, s.mappings)
        }
        for block in evicted { unmap(block.pointer, size: block.size) }
        if let trimmed { unmapTail(trimmed.pointer, keeping: size, of: trimmed.from) }
        if let p = reused { return p }
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        #if os(Linux)
        flags |= MAP_POPULATE
        #endif
        guard let p = mmap(nil, size + page, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: mapping \(size) bytes for a tensor failed (errno \(errno))")
        }
        return p + color(mapping)
    }

    /// Mappings start on page boundaries, so without an offset every tensor's element i would sit
    /// at the same address modulo 4 KiB as every other's: a kernel streaming x and y together then
    /// hits the same L1 sets and the CPU's 4 KiB load/store aliasing. Each block starts at a
    /// different multiple of 64 bytes within its first page instead, as malloc's blocks happen to.
    private static let page = 4096
    private static func color(_ mapping: Int) -> Int { (mapping * 17 % 64) * 64 }
    private static func unmap(_ p: UnsafeMutableRawPointer, size: Int) {
        munmap(UnsafeMutableRawPointer(bitPattern: Int(bitPattern: p) & ~(page - 1))!, size + page)
    }

    /// Shrinks a block of `size` bytes to its first `kept` (both multiples of the granule, so of a page).
    private static func unmapTail(_ p: UnsafeMutableRawPointer, keeping kept: Int, of size: Int) {
        let base = UnsafeMutableRawPointer(bitPattern: Int(bitPattern: p) & ~(page - 1))!
        munmap(base + kept + page, size - kept)
    }

    static func deallocate(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let size = rounded(bytes)
        state.withLock { s in
            s.liveBytes -= size
            s.cachedBytes += size
            s.cached[size, default: []].append(p)
        }
    }

    private static func smallestCachedSize(_ cached: [Int: [UnsafeMutableRawPointer]], above size: Int) -> Int? {
        var best: Int?
        for (candidate, blocks) in cached where !blocks.isEmpty && candidate > size && candidate < (best ?? .max) {
            best = candidate
        }
        return best
    }

    private static func largestCachedSize(_ cached: [Int: [UnsafeMutableRawPointer]]) -> Int? {
        var best: Int?
        for (size, blocks) in cached where !blocks.isEmpty && size > (best ?? 0) { best = size }
        return best
    }

    /// Unmaps every cached block and forgets the peak, e.g. after a large one-off evaluation.
    static func releaseCached() {
        let blocks: [(UnsafeMutableRawPointer, Int)] = state.withLock { s in
            let all = s.cached.flatMap { size, ps in ps.map { ($0, size) } }
            s.cached.removeAll()
            s.cachedBytes = 0
            s.peakLiveBytes = s.liveBytes
            return all
        }
        for (p, size) in blocks { unmap(p, size: size) }
    }

    /// New mappings made so far: a repeating workload adds few once its first steps have run.
    static var mappings: Int { state.withLock { $0.mappings } }
    static var trims: Int { state.withLock { $0.trims } }
    static var cachedBytes: Int { state.withLock { $0.cachedBytes } }
    static var liveBytes: Int { state.withLock { $0.liveBytes } }
    static var peakLiveBytes: Int { state.withLock { $0.peakLiveBytes } }
}
