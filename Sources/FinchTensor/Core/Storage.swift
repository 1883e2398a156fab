import Synchronization
#if canImport(Glibc)
import CMalloc
#endif

/// A reference-counted, 64-byte aligned Float32 buffer shared by a tensor and its views.
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Bytes held by all live storages: lets tests and benchmarks see that memory stays flat.
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    private static let live = Atomic<Int>(0)

    /// The most bytes `liveBytes` has reached since the last `resetPeak()`: separates what tensors
    /// hold at the worst moment of a step from what the allocator keeps around them.
    public static var peakLiveBytes: Int { peak.load(ordering: .relaxed) }
    private static let peak = Atomic<Int>(0)
    public static func resetPeak() { peak.store(live.load(ordering: .relaxed), ordering: .relaxed) }

    /// Returns the large blocks kept for reuse to the system (see `BlockPool`): for a process that
    /// ran one large workload and goes on with small ones.
    public static func releaseCachedMemory() { BlockPool.releaseCached() }

    /// Times the block pool had to map new memory (see `BlockPool`): flat across the steps of a
    /// repeating workload once its free ranges serve it.
    public static var poolMappings: Int { BlockPool.mappings }

    /// Large tensors come from `BlockPool`; small ones and the kernels' scratch buffers from malloc.
    /// glibc serves blocks above its mmap threshold with fresh mappings, so every scratch buffer
    /// would pay page faults on first touch. Raising the threshold to its maximum (32 MiB) and
    /// not trimming keeps freed memory in the heap for the next call to reuse.
    private static let allocatorTuned: Bool = {
        #if canImport(Glibc)
        mallopt(M_MMAP_THRESHOLD, 32 << 20)
        mallopt(M_TRIM_THRESHOLD, 256 << 20)
        #endif
        return true
    }()

    public init(count: Int) {
        _ = Self.allocatorTuned
        self.count = count
        let bytes = Self.byteCount(count)
        Self.peak.max(Self.live.wrappingAdd(bytes, ordering: .relaxed).newValue, ordering: .relaxed)
        let raw = bytes >= BlockPool.threshold ? BlockPool.allocate(bytes: bytes)
                                               : UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if MemoryProfile.isEnabled { MemoryProfile.allocated(self, bytes: bytes) }
    }

    private static func byteCount(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    /// Zero-length storage for tensors that carry only a shape (graph nodes).
    nonisolated(unsafe) static let empty = TensorStorage(count: 0)

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit {
        let bytes = Self.byteCount(count)
        if MemoryProfile.isEnabled { MemoryProfile.released(self) }
        Self.live.wrappingSubtract(bytes, ordering: .relaxed)
        if bytes >= BlockPool.threshold { BlockPool.deallocate(UnsafeMutableRawPointer(pointer), bytes: bytes) }
        else { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}
