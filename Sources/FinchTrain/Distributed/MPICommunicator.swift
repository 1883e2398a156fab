import Foundation
import CMPI
import FinchTensor

/// `MPI_COMM_WORLD` of Open MPI. Only the thread that initialised MPI calls it
/// (`MPI_THREAD_FUNNELED`): the trainer's loop, never the loader's queues. MPI's default error
/// handler stays in force, so a failed call or a dead peer ends the job rather than returning.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    let comm: MPI_Comm
    /// The thread level Open MPI granted, and the thread that initialised it: under
    /// `MPI_THREAD_FUNNELED` only that thread may call MPI.
    let threadLevel: Int32
    let initThread: pthread_t

    /// Largest element count per MPI call (counts are C ints).
    static let chunk = 1 << 28

    /// Initialises MPI; call once, from the main thread (`Distributed.world` does).
    init(environment: [String: String]) {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, finch_mpi_thread_funneled(), &provided)
        threadLevel = provided
        initThread = pthread_self()
        atexit { finch_mpi_finalize_at_exit() }
        comm = finch_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        // mpirun tells each process where it sits on its machine; other launchers get one rank per machine.
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init) ?? 0
        localSize = max(1, environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1)
    }

    private init(duplicating other: MPICommunicator) {
        var c: MPI_Comm? = nil
        MPI_Comm_dup(other.comm, &c)
        // MPI's default error handler ends the job when the duplication fails.
        comm = c ?? other.comm
        (rank, size, localRank, localSize) = (other.rank, other.size, other.localRank, other.localSize)
        (threadLevel, initThread) = (other.threadLevel, other.initThread)
    }

    /// A collective call: every rank makes it, so make it once and keep the result.
    public func duplicate() -> Communicator { MPICommunicator(duplicating: self) }

    public var canOverlapOnCurrentThread: Bool {
        threadLevel >= finch_mpi_thread_funneled() && pthread_equal(pthread_self(), initThread) != 0
    }

    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> PendingCollective {
        ensure(pthread_equal(pthread_self(), initThread) != 0, "MPICommunicator: a nonblocking reduction started off the thread that initialised MPI")
        let pending = MPIRequests()
        chunked(buffer) { base, n in
            var r = finch_mpi_request_null()
            MPI_Iallreduce(finch_mpi_in_place(), base, n, finch_mpi_float(), finch_mpi_sum(), comm, &r)
            pending.requests.append(r)
        }
        return pending
    }

    private func chunked<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ body: (UnsafeMutablePointer<T>, Int32) -> Void) {
        guard let base = buffer.baseAddress else { return }
        var start = 0
        while start < buffer.count {
            let n = min(Self.chunk, buffer.count - start)
            body(base + start, Int32(n))
            start += n
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        chunked(buffer) { MPI_Allreduce(finch_mpi_in_place(), $0, $1, finch_mpi_float(), finch_mpi_sum(), comm) }
    }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        chunked(buffer) { MPI_Allreduce(finch_mpi_in_place(), $0, $1, finch_mpi_double(), finch_mpi_sum(), comm) }
    }
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        chunked(buffer) { MPI_Allreduce(finch_mpi_in_place(), $0, $1, finch_mpi_double(), finch_mpi_max(), comm) }
    }
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        let bytes = buffer.bindMemory(to: UInt8.self)
        chunked(bytes) { MPI_Bcast($0, $1, finch_mpi_byte(), Int32(root), comm) }
    }
    public func barrier() { MPI_Barrier(comm) }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        let counts = gatherCounts(bytes.count)
        var out = [UInt8](repeating: 0, count: counts.reduce(0, +))
        let displacements = offsets(counts)
        bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = MPI_Allgatherv(src.baseAddress, Int32(bytes.count), finch_mpi_byte(), dst.baseAddress,
                                   counts.map(Int32.init), displacements.map(Int32.init), finch_mpi_byte(), comm)
            }
        }
        return counts.indices.map { Array(out[displacements[$0]..<displacements[$0] + counts[$0]]) }
    }

    public func allgatherConcatenated(_ values: UnsafeBufferPointer<Float>) -> [Float] {
        let counts = gatherCounts(values.count)
        var out = [Float](repeating: 0, count: counts.reduce(0, +))
        out.withUnsafeMutableBufferPointer { dst in
            _ = MPI_Allgatherv(values.baseAddress, Int32(values.count), finch_mpi_float(), dst.baseAddress,
                               counts.map(Int32.init), offsets(counts).map(Int32.init), finch_mpi_float(), comm)
        }
        return out
    }

    /// Every rank's element count; a gather whose total would overflow MPI's int counts ends the job.
    private func gatherCounts(_ count: Int) -> [Int] {
        var mine = Int64(count)
        var all = [Int64](repeating: 0, count: size)
        all.withUnsafeMutableBufferPointer { dst in
            _ = MPI_Allgather(&mine, 1, finch_mpi_int64(), dst.baseAddress, 1, finch_mpi_int64(), comm)
        }
        let counts = all.map { Int($0) }
        if counts.reduce(0, +) > Int(Int32.max) {
            FileHandle.standardError.write(Data("rank \(rank): a gather of \(counts.reduce(0, +)) elements exceeds MPI's int counts\n".utf8))
            abort(code: 1)
        }
        return counts
    }

    private func offsets(_ counts: [Int]) -> [Int] {
        var o = [Int](), at = 0
        for c in counts { o.append(at); at += c }
        return o
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }
}

/// The requests of one nonblocking collective (several when it was split into int-sized chunks).
final class MPIRequests: PendingCollective {
    var requests: [MPI_Request?] = []
    private var done = false

    func test() -> Bool {
        if !done { done = requests.withUnsafeMutableBufferPointer { finch_mpi_testall(Int32($0.count), $0.baseAddress) != 0 } }
        return done
    }

    func wait() {
        if !done { requests.withUnsafeMutableBufferPointer { finch_mpi_waitall(Int32($0.count), $0.baseAddress) } }
        done = true
    }
}
