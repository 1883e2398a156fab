import Foundation
import FinchTensor

/// `FINCH_POOL_STATS=1 finch bench --model …`: where the worker threads wait during the timed
/// training steps (issue 25). With `threads` threads a step has (threads − 1) × step time of worker
/// time; what the workers did not spend running parts is idle, and the line splits the calling
/// thread's side of it into serial work between loops and the wait at loops' ends.
struct BenchPoolStats {
    static let isEnabled = ProcessInfo.processInfo.environment["FINCH_POOL_STATS"].map { $0 != "0" } ?? false

    static func line(_ d: PoolStats, steps: Int, threads: Int) -> String {
        let n = Double(max(steps, 1))
        let wall = d.loopSeconds + d.serialSeconds
        let workerTime = wall * Double(max(threads - 1, 0))
        let idle = workerTime > 0 ? 1 - d.workerBusySeconds / workerTime : 0
        func ms(_ s: Double) -> String { String(format: "%.2f", s * 1000 / n) }
        return "workers: loops/step=\(d.loops / max(steps, 1)) parts/loop=\(String(format: "%.1f", Double(d.parts) / Double(max(d.loops, 1)))) " +
            "worker_parts=\(String(format: "%.1f", 100 * Double(d.workerParts) / Double(max(d.parts, 1))))% " +
            "loops_ms/step=\(ms(d.loopSeconds)) serial_ms/step=\(ms(d.serialSeconds)) join_ms/step=\(ms(d.joinSeconds)) " +
            "worker_busy_ms/step=\(ms(d.workerBusySeconds)) worker_idle=\(String(format: "%.1f", 100 * idle))% sleeps/step=\(d.sleeps / max(steps, 1)) " +
            "uneven_loops/step=\(d.unevenLoops / max(steps, 1)) uneven_ms/step=\(ms(d.unevenSeconds))"
    }
}
