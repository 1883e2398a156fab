import Foundation
import FinchTensor

/// Gradient reduction overlapped with backward, as DDP does it: the parameters are laid out in
/// buckets in reverse registration order (the order backward finishes them, roughly), each
/// gradient is copied into its bucket when autograd reports it final, and a complete bucket is
/// summed over the ranks with a nonblocking allreduce while backward goes on. Buckets start
/// strictly in index order, so every rank starts the same collectives in the same order even
/// when a gradient is missing on one of them (it is sent as zeros when backward ends).
///
/// The reductions run on their own communicator (`Communicator.duplicate`), so BatchNorm's
/// blocking reductions in backward (`sync_bn`) cannot be matched with them. Every call is made
/// from the thread that runs backward (Open MPI's `MPI_THREAD_FUNNELED`).
final class GradientBuckets {
    private let communicator: Communicator
    private let capacity: Int

    private struct Slot { var bucket: Int; var offset: Int; var filled: Bool }
    private var layout: [ObjectIdentifier] = []
    private var slots: [ObjectIdentifier: Slot] = [:]
    private var members: [[Tensor]] = []
    private var storage: [UnsafeMutableBufferPointer<Float>] = []
    private var missing: [Int] = []
    private var nextToStart = 0
    private var inFlight: [(PendingCollective, bucket: Int)] = []
    private var firstStart: Date?
    private var lastDone: Date?

    static let firstBucketElements = 262_144

    init(communicator: Communicator, capacity: Int) {
        self.communicator = communicator
        self.capacity = capacity
    }

    deinit { for b in storage { b.deallocate() } }

    /// Lays out `params` (the trained ones, in registration order) unless they are the last
    /// step's, and marks every gradient as not yet seen.
    func begin(_ params: [Tensor]) {
        let ids = params.map(ObjectIdentifier.init)
        if ids != layout { plan(params, ids) }
        for k in slots.keys { slots[k]!.filled = false }
        missing = members.map(\.count)
        nextToStart = 0
        inFlight = []
        firstStart = nil
        lastDone = nil
    }

    private func plan(_ params: [Tensor], _ ids: [ObjectIdentifier]) {
        for b in storage { b.deallocate() }
        layout = ids
        slots = [:]
        members = []
        var used = 0
        for p in params.reversed() {
            // The first bucket is small (DDP's 1 MiB), so a reduction starts early in backward even
            // when the whole model fits one bucket; a parameter larger than a bucket gets one of its own.
            let cap = members.count == 1 ? min(capacity, Self.firstBucketElements) : capacity
            if members.isEmpty || used + p.count > cap && used > 0 {
                members.append([])
                used = 0
            }
            slots[ObjectIdentifier(p)] = Slot(bucket: members.count - 1, offset: used, filled: false)
            members[members.count - 1].append(p)
            used += p.count
        }
        storage = members.map { m in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, m.reduce(0) { $0 + $1.count }))
            b.initialize(repeating: 0)
            return b
        }
    }

    /// Autograd's report that `t`'s gradient is final: copied into its bucket, which starts when
    /// it is complete and every earlier bucket has started.
    func gradientFinal(_ t: Tensor) {
        guard let s = slots[ObjectIdentifier(t)], !s.filled else { return }
        copyGradient(of: t, to: storage[s.bucket].baseAddress! + s.offset)
        slots[ObjectIdentifier(t)]!.filled = true
        missing[s.bucket] -= 1
        startReadyBuckets()
    }

    private func startReadyBuckets() {
        while nextToStart < members.count && missing[nextToStart] == 0 {
            if firstStart == nil { firstStart = Date() }
            inFlight.append((communicator.startAllreduceSum(storage[nextToStart]), nextToStart))
            nextToStart += 1
        }
    }

    /// Between graph nodes: lets MPI progress the oldest reductions and notes when the last completed.
    func progress() {
        while let first = inFlight.first, first.0.test() {
            inFlight.removeFirst()
            lastDone = Date()
        }
    }

    /// After backward: the gradients no rank reported are sent as they are (zeros when absent),
    /// every reduction is waited for, and each parameter present on some rank gets the sum.
    /// Returns the seconds from the first start to the last completion, and those after
    /// `backwardEnd` (the part not hidden behind backward).
    func finish(_ params: [Tensor], present: [Bool], backwardEnd: Date) -> (total: Double, exposed: Double) {
        for p in params {
            guard let s = slots[ObjectIdentifier(p)], !s.filled else { continue }
            gradientFinal(p)
        }
        for (r, _) in inFlight { r.wait() }
        if !inFlight.isEmpty { lastDone = Date() }
        inFlight = []
        for (p, isPresent) in zip(params, present) {
            guard isPresent else { p.grad = nil; continue }
            let s = slots[ObjectIdentifier(p)]!
            // A new tensor: the old gradient may share storage with another.
            let g = Tensor(uninitializedShape: p.shape)
            g.basePointer.update(from: storage[s.bucket].baseAddress! + s.offset, count: p.count)
            p.grad = g
        }
        let end = Date()
        let total = firstStart.map { (lastDone ?? end).timeIntervalSince($0) } ?? 0
        return (max(total, end.timeIntervalSince(backwardEnd)), end.timeIntervalSince(backwardEnd))
    }

    /// Number of buckets in the current layout (for tests and reports).
    var bucketCount: Int { members.count }
}

func copyGradient(of p: Tensor, to dst: UnsafeMutablePointer<Float>) {
    guard let g = p.grad else { dst.update(repeating: 0, count: p.count); return }
    ensure(g.shape == p.shape, "DataParallel: gradient of shape \(g.shape) for a parameter of shape \(p.shape)")
    g.withContiguousBuffer { dst.update(from: $0.baseAddress!, count: p.count) }
}
