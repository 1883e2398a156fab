import CFinchKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import COpenBLAS

/// Work splitting over the machine's cores. Chunks are contiguous ranges so each
/// thread streams through its own part of memory.
public enum Parallel {
    /// Number of threads used by Finch's own loops and by OpenBLAS.
    public private(set) static var threads: Int = {
        let env = ProcessInfoLite.environment("FINCH_NUM_THREADS").flatMap(Int.init)
        let n = max(1, env ?? ProcessInfoLite.activeProcessorCount)
        BLASCoreSelection.apply()
        if let us = ProcessInfoLite.environment("FINCH_SPIN_US").flatMap(Int.init) { finch_pool_set_spin_ns(us * 1000) }
        openblas_set_num_threads(gemmSplit ? 1 : Int32(n))
        return n
    }()

    /// Whether Finch splits GEMMs over its own threads with OpenBLAS single-threaded (the default),
    /// or leaves threading to OpenBLAS (`FINCH_OPENBLAS_THREADS=1`).
    static let gemmSplit: Bool = ProcessInfoLite.environment("FINCH_OPENBLAS_THREADS") != "1"

    /// Applies the thread count to OpenBLAS before its first use (reading `threads` does it once).
    @inline(__always)
    public static func configure() { _ = threads }

    /// The OpenBLAS kernel family in use (after Finch's correction for CPUs OpenBLAS does not know).
    public static var blasCore: String { configure(); return BLASCoreSelection.coreName }
    /// Instruction set of Finch's own run-time-dispatched kernels (exp, SiLU, sigmoid).
    public static var kernelISA: String { String(cString: finch_kernels_isa()) }

    public static func setThreads(_ n: Int) {
        threads = max(1, n)
        openblas_set_num_threads(gemmSplit ? 1 : Int32(threads))
    }

    /// Parts per thread a loop is split into (`FINCH_PARTS`, default 4).
    static var partsPerThread = ProcessInfoLite.environment("FINCH_PARTS").flatMap(Int.init).map { max(1, $0) } ?? 4

    /// Calls `body` on disjoint ranges covering 0..<n, in parallel when each part gets at least `grain` items.
    @inline(__always)
    public static func forEach(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let most = max(1, n / max(grain, 1))
        if min(threads, most) <= 1 {
            body(0..<n)
            return
        }
        // A few parts per thread, taken in turn: a thread that starts late or runs slower takes
        // fewer, instead of the others waiting for its half.
        let parts = min(threads * partsPerThread, most)
        withoutActuallyEscaping(body) { body in
            var task = PoolTask(n: n, parts: parts, body: body)
            let ran = withUnsafeMutablePointer(to: &task) { finch_pool_run(parts, threads - 1, $0, runPoolTask) }
            switch ran {
            case 1: return
            case 0: body(0..<n)  // inside another loop's part: the other threads are busy already
            default:
                // Another thread's loop holds the pool (a data-loader worker, say).
                DispatchQueue.concurrentPerform(iterations: parts) { task.run(part: $0) }
            }
        }
    }
}

extension Parallel {
    /// A sum split into `parts` runs (a weight gradient over samples, say): `body(range, target)`
    /// accumulates each part p in `range` into `target(p)` — part 0 into `result` itself, the others
    /// into buffers of `size` floats — and those are then added into `result` in part order, so the
    /// result depends on the number of parts, not on which thread ran what.
    static func partialSums(_ parts: Int, size: Int, into result: UnsafeMutablePointer<Float>,
                            _ body: (_ range: Range<Int>, _ target: (Int) -> UnsafeMutablePointer<Float>) -> Void) {
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(parts - 1, 0) * size)
        defer { partial.deallocate() }
        forEach(parts) { range in body(range) { $0 == 0 ? result : partial + ($0 - 1) * size } }
        guard parts > 1 else { return }
        forEach(size, grain: 1 << 14) { range in
            for part in 0..<parts - 1 {
                let src = partial + part * size
                for i in range { result[i] += src[i] }
            }
        }
    }
}

/// One `Parallel.forEach` call as the worker pool sees it: part p covers n·p/parts ..< n·(p+1)/parts.
private struct PoolTask {
    let n: Int, parts: Int
    let body: (Range<Int>) -> Void

    func run(part p: Int) {
        let lo = n * p / parts, hi = n * (p + 1) / parts
        if lo < hi { body(lo..<hi) }
    }
}

private let runPoolTask: finch_pool_task = { context, part in
    context!.assumingMemoryBound(to: PoolTask.self).pointee.run(part: part)
}

/// The two facts Parallel needs without importing Foundation into the kernel layer.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return Int(sysconf(_SC_NPROCESSORS_ONLN))
        #endif
    }
}
