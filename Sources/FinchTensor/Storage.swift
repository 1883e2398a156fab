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

    /// glibc serves blocks above its mmap threshold with fresh mappings, so every new activation
    /// or gradient would pay page faults on first touch. Raising the threshold to its maximum
    /// (32 MiB) and not trimming keeps freed tensor memory in the heap for the next step to reuse.
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
        Self.live.wrappingAdd(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Zero-length storage for tensors that carry only a shape (graph nodes).
    nonisolated(unsafe) static let empty = TensorStorage(count: 0)

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit {
        Self.live.wrappingSubtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}
