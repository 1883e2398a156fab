import Foundation
import CFinchHDF5Probe

/// Reads a whole HDF5 file in a disposable child process before libhdf5 opens it in this one.
///
/// Debian 12's libhdf5 1.10.8 crashes (in H5A__close, H5HG_read) and loops forever (in
/// H5HG__protect) on some crafted files, inside single calls that Finch's checks cannot
/// surround; the child takes the signal or the hang, and the file is refused naming it. Files
/// on which libhdf5 merely returns errors pass: the in-process reader meets the same errors and
/// names the object at fault. `FINCH_HDF5_PROBE=0` turns the check off for trusted files.
enum HDF5Probe {
    enum Verdict: Equatable {
        case ok
        /// libhdf5 returned errors but survived every object it could reach.
        case refused
        case crashed(signal: Int32)
        /// An exit status other than success or refusal (a sanitizer's report).
        case exited(status: Int32)
        case hung(seconds: Double)
        case outOfMemory
        case unavailable(errno: Int32)

        /// Why the file cannot be read safely; nil when it can.
        var problem: String? {
            switch self {
            case .ok, .refused: return nil
            case .crashed(let s): return "libhdf5 crashed (signal \(s), \(String(cString: strsignal(s)))) while a separate process read it"
            case .exited(let s): return "libhdf5 failed abnormally (exit status \(s)) while a separate process read it"
            case .hung(let t): return "libhdf5 did not finish reading it in \(Int(t.rounded())) s (it loops on some damaged files)"
            case .outOfMemory: return "libhdf5 ran out of memory reading it, far beyond what a file of its size needs"
            case .unavailable(let e): return "no process could be started to check it first (\(String(cString: strerror(e))))"
            }
        }
    }

    static var isEnabled: Bool { ProcessInfo.processInfo.environment["FINCH_HDF5_PROBE"] != "0" }

    /// Reading a valid file takes milliseconds per megabyte; the deadline leaves room for a cold
    /// disk and a busy machine, and stays under the fuzzer's 10 s per input for small files.
    static func deadline(forSize size: Int) -> Double { 5 + Double(size) / 50e6 }

    /// Throws `HDF5Error.unsafe` unless libhdf5 read the file through without crashing or
    /// hanging. A verdict is remembered for the unchanged file (same inode, size, mtime and
    /// ctime), so the readers that open one file several times probe it once.
    static func check(path: String, size: Int) throws {
        guard isEnabled else { return }
        let before = identity(path)
        let verdict: Verdict
        if let before, let known = cache.lookup(before) {
            verdict = known
        } else {
            verdict = run(path: path, size: size, timeout: deadline(forSize: size))
            if let before, identity(path) == before {
                if case .unavailable = verdict {} else { cache.store(before, verdict) }
            }
        }
        if let problem = verdict.problem { throw HDF5Error.unsafe(file: path, reason: problem) }
    }

    /// What the child does: read the file, or (for tests of the parent's side) crash or spin.
    enum Mode { case read, segfault, spin }

    static func run(path: String, size: Int, timeout: Double, mode: Mode = .read) -> Verdict {
        let childMode: finch_hdf5_probe_mode
        switch mode {
        case .read: childMode = FINCH_HDF5_PROBE_MODE_NORMAL
        case .segfault: childMode = FINCH_HDF5_PROBE_MODE_SEGFAULT
        case .spin: childMode = FINCH_HDF5_PROBE_MODE_SPIN
        }
        let r = finch_hdf5_probe(path, Int64(size), timeout, childMode)
        switch r.verdict {
        case FINCH_HDF5_PROBE_OK: return .ok
        case FINCH_HDF5_PROBE_REFUSED: return .refused
        case FINCH_HDF5_PROBE_CRASHED: return r.detail > 0 ? .crashed(signal: r.detail) : .exited(status: -r.detail)
        case FINCH_HDF5_PROBE_HUNG: return .hung(seconds: timeout)
        case FINCH_HDF5_PROBE_OUT_OF_MEMORY: return .outOfMemory
        default: return .unavailable(errno: r.detail)
        }
    }

    struct Identity: Hashable {
        let device: UInt64, inode: UInt64, size: Int64
        let modified: Int, modifiedNanos: Int, changed: Int, changedNanos: Int
    }

    static func identity(_ path: String) -> Identity? {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        return Identity(device: UInt64(s.st_dev), inode: UInt64(s.st_ino), size: Int64(s.st_size),
                        modified: s.st_mtim.tv_sec, modifiedNanos: s.st_mtim.tv_nsec,
                        changed: s.st_ctim.tv_sec, changedNanos: s.st_ctim.tv_nsec)
    }

    final class Cache: @unchecked Sendable {
        private let lock = NSLock()
        private var verdicts: [Identity: Verdict] = [:]
        /// Enough for every file one run opens; a fuzzer's stream of inputs must not grow it.
        private let capacity = 64

        func lookup(_ key: Identity) -> Verdict? { lock.withLock { verdicts[key] } }
        func store(_ key: Identity, _ verdict: Verdict) {
            lock.withLock {
                if verdicts.count >= capacity { verdicts.removeAll() }
                verdicts[key] = verdict
            }
        }
        func removeAll() { lock.withLock { verdicts.removeAll() } }
    }
    static let cache = Cache()
}
