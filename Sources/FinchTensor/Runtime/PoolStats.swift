import CFinchKernels

/// What the worker pool did over a stretch of work, to find where a core sits idle: serial work
/// between loops on the calling thread, the wait at a loop's end for the workers' last parts, and
/// workers that slept between loops. Counting is off unless `Parallel.countPoolStats(true)`.
public struct PoolStats: Sendable {
    public var loops = 0, parts = 0, workerParts = 0, sleeps = 0
    /// Wall-clock seconds: the calling thread inside loops, of that waiting for workers at the end,
    /// and between loops; the workers' time running parts (summed over workers).
    public var loopSeconds = 0.0, joinSeconds = 0.0, serialSeconds = 0.0, workerBusySeconds = 0.0
    /// Loops whose part count is not a multiple of the threads taking part, and their time.
    public var unevenLoops = 0, unevenSeconds = 0.0

    public init() {}

    init(_ s: finch_pool_stats_t) {
        loops = Int(s.loops); parts = Int(s.parts); workerParts = Int(s.worker_parts); sleeps = Int(s.sleeps)
        loopSeconds = Double(s.loop_ns) * 1e-9; joinSeconds = Double(s.join_ns) * 1e-9
        serialSeconds = Double(s.serial_ns) * 1e-9; workerBusySeconds = Double(s.worker_busy_ns) * 1e-9
        unevenLoops = Int(s.uneven_loops); unevenSeconds = Double(s.uneven_ns) * 1e-9
    }

    /// The counts between two snapshots.
    public static func - (a: PoolStats, b: PoolStats) -> PoolStats {
        var d = PoolStats()
        d.loops = a.loops - b.loops; d.parts = a.parts - b.parts
        d.workerParts = a.workerParts - b.workerParts; d.sleeps = a.sleeps - b.sleeps
        d.loopSeconds = a.loopSeconds - b.loopSeconds; d.joinSeconds = a.joinSeconds - b.joinSeconds
        d.serialSeconds = a.serialSeconds - b.serialSeconds
        d.workerBusySeconds = a.workerBusySeconds - b.workerBusySeconds
        d.unevenLoops = a.unevenLoops - b.unevenLoops; d.unevenSeconds = a.unevenSeconds - b.unevenSeconds
        return d
    }
}

extension Parallel {
    /// Starts or stops counting `PoolStats` (a clock read per loop and per part while on).
    public static func countPoolStats(_ on: Bool) { finch_pool_enable_stats(on ? 1 : 0) }

    /// The counts since counting first started; take differences of two snapshots.
    public static var poolStats: PoolStats {
        var s = finch_pool_stats_t()
        finch_pool_stats(&s)
        return PoolStats(s)
    }
}
