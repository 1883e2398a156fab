import Foundation

/// The collective operations data-parallel training needs (MPI's vocabulary): every rank calls
/// each operation in the same order with buffers of the same length. `Distributed.world` is the
/// process's communicator: Open MPI's `MPI_COMM_WORLD` under `mpirun`, `SingleProcess` otherwise.
public protocol Communicator: AnyObject {
    /// This process's index among `size` processes; rank 0 is the one that prints and writes.
    var rank: Int { get }
    var size: Int { get }
    /// Index and count of the ranks on this machine (threads per rank are cores ÷ `localSize`).
    var localRank: Int { get }
    var localSize: Int { get }
    /// Element-wise sum over all ranks, in place; every rank receives the same result.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Element-wise maximum over all ranks, in place.
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Replaces the buffer's bytes on every rank with those of `root`.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// Every rank's bytes (of any length), indexed by rank.
    func allgather(_ bytes: [UInt8]) -> [[UInt8]]
    /// Every rank's floats (of any length), concatenated in rank order.
    func allgatherConcatenated(_ values: UnsafeBufferPointer<Float>) -> [Float]
    /// Ends every rank of the job (a rank that cannot continue must not leave the others waiting).
    func abort(code: Int32) -> Never
    /// Starts an element-wise sum over all ranks, in place; `buffer` must stay valid and untouched
    /// until the returned collective has completed. Every rank starts these in the same order.
    func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> PendingCollective
    /// A communicator over the same ranks whose collectives do not match this one's, so
    /// nonblocking reductions can be in flight while others run here (BatchNorm's, in backward).
    func duplicate() -> Communicator
    /// Whether this thread may start and progress nonblocking collectives (MPI's thread level).
    var canOverlapOnCurrentThread: Bool { get }
}

/// A nonblocking collective in flight.
public protocol PendingCollective: AnyObject {
    /// Whether it has completed; asking is what lets MPI progress it.
    func test() -> Bool
    func wait()
}

/// A collective that completed when it was started.
final class CompletedCollective: PendingCollective {
    func test() -> Bool { true }
    func wait() {}
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Without nonblocking collectives: the blocking sum, done when started.
    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> PendingCollective {
        allreduceSum(buffer)
        return CompletedCollective()
    }
    public func duplicate() -> Communicator { self }
    public var canOverlapOnCurrentThread: Bool { false }

    public func allreduceSum(_ values: inout [Double]) { values.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    public func allreduceSum(_ values: inout [Float]) { values.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    public func allreduceMax(_ values: inout [Double]) { values.withUnsafeMutableBufferPointer { allreduceMax($0) } }

    /// Every rank's value, indexed by rank.
    public func allgather(_ value: Double) -> [Double] {
        var bits = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
        bits = allgather(bits).flatMap { $0 }
        return stride(from: 0, to: bits.count, by: 8).map { i in
            Double(bitPattern: bits[i..<i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
    }

    /// Rank `root`'s bytes on every rank.
    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] {
        var count = [Double(bytes.count)]
        count.withUnsafeMutableBytes { broadcast($0, root: root) }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        out.withUnsafeMutableBytes { broadcast($0, root: root) }
        return out
    }
}

/// The communicator of a process that was not started by mpirun: one rank, every collective the
/// identity. Training through it takes the same path as no communicator at all.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
    public func barrier() {}
    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
    public func allgatherConcatenated(_ values: UnsafeBufferPointer<Float>) -> [Float] { Array(values) }
    public func abort(code: Int32) -> Never { exit(code) }
}
