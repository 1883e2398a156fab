import Foundation
import FinchTensor

/// Entry point to data-parallel runs: `Distributed.world` is `MPI_COMM_WORLD` when the process
/// was started by Open MPI's `mpirun` (it sets `OMPI_COMM_WORLD_SIZE`), and a `SingleProcess`
/// otherwise, so a plain `train` never initialises MPI.
public enum Distributed {
    /// Whether the environment says mpirun started this process.
    public static func launchedByMPI(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// The process's communicator, made on first use (call it first from the main thread: MPI
    /// is initialised by the thread that will make every call). Under mpirun, unless
    /// `FINCH_NUM_THREADS` says otherwise, each rank gets cores ÷ ranks on its machine threads,
    /// so N ranks on one machine never oversubscribe it.
    public static let world: Communicator = {
        let env = ProcessInfo.processInfo.environment
        guard launchedByMPI(env) else { return SingleProcess() }
        let c = MPICommunicator(environment: env)
        if env["FINCH_NUM_THREADS"] == nil { Parallel.setThreads(threadsPerRank(cores: ProcessInfo.processInfo.activeProcessorCount, localSize: c.localSize)) }
        return c
    }()

    /// Threads this process computes with (Finch's loops and OpenBLAS).
    public static var threads: Int { Parallel.threads }

    /// Cores shared evenly between the ranks of one machine, at least one thread each.
    public static func threadsPerRank(cores: Int, localSize: Int) -> Int { max(1, cores / max(1, localSize)) }

    /// Runs a command's body; under mpirun an error on any rank is printed with its rank and
    /// ends every rank (the others would otherwise wait for it in the next collective).
    public static func runCommand(_ body: (Communicator?) throws -> Void) rethrows {
        let comm = trainingCommunicator
        guard let comm else { return try body(nil) }
        do { try body(comm) } catch {
            FileHandle.standardError.write(Data("error on rank \(comm.rank) of \(comm.size): \(error)\n".utf8))
            comm.abort(code: 1)
        }
    }

    /// One evaluation from every rank's share of a set (`Shard`), equal to one process's.
    public static func combine(_ m: ClassificationMetrics, over comm: Communicator) -> ClassificationMetrics {
        var v = m.summableCounts
        comm.allreduceSum(&v)
        return ClassificationMetrics(numClasses: m.numClasses, summedCounts: v)
    }

    /// The communicator a run should train through: nil for a single process (the trainer's
    /// original path, unchanged), the world otherwise.
    public static var trainingCommunicator: Communicator? { world.size > 1 ? world : nil }
}
