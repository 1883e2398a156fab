import Synchronization

/// A reference-counted, 64-byte aligned Float32 buffer shared by a tensor and its views.
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Bytes held by all live storages: lets tests and benchmarks see that memory stays flat.
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    private static let live = Atomic<Int>(0)

    public init(count: Int) {
        self.count = count
        Self.live.wrappingAdd(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit {
        Self.live.wrappingSubtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}
