import Synchronization

/// What tensors hold at the moment of peak memory, by the op that made them: the tool for finding
/// which activations a training step keeps (`FINCH_MEMORY_PROFILE=1 finch bench --model …` prints it).
///
/// Off unless the environment variable `FINCH_MEMORY_PROFILE` is set (or `isEnabled` is set before
/// the first tensor is made): then every storage is registered with a label, the op that recorded
/// it ("conv2d", "relu", …), "grad ← op" for what an op's backward made, or "untracked" (leaves,
/// optimizer state, unrecorded results). Each time live bytes pass their peak, the labels' totals
/// are copied, so `peakBreakdown` is the composition at the peak itself.
public enum MemoryProfile {
    /// Read once; a profile switched on halfway would miss the storages made before.
    nonisolated(unsafe) public static var isEnabled: Bool = ProcessInfoLite.environment("FINCH_MEMORY_PROFILE") != nil

    private struct State {
        var labels: [ObjectIdentifier: (label: String, bytes: Int)] = [:]
        var live = 0
        var peak = 0
        var atPeak: [String: Int] = [:]
        var contextAtPeak = ""
        /// Label of storages made now: set while an op's backward runs.
        var context = "untracked"
    }
    private static let state = Mutex(State())

    static func allocated(_ storage: TensorStorage, bytes: Int) {
        state.withLock { s in
            s.labels[ObjectIdentifier(storage)] = (s.context, bytes)
            s.live += bytes
            // A snapshot only when the peak grows by a MiB: cheap enough for a model's whole step.
            if s.live > s.peak + (1 << 20) || s.peak == 0 {
                s.peak = s.live
                var totals: [String: Int] = [:]
                for (_, entry) in s.labels { totals[entry.label, default: 0] += entry.bytes }
                s.atPeak = totals
                s.contextAtPeak = s.context
            }
        }
    }

    static func released(_ storage: TensorStorage) {
        state.withLock { s in
            if let entry = s.labels.removeValue(forKey: ObjectIdentifier(storage)) { s.live -= entry.bytes }
        }
    }

    /// Names the storage of a recorded result after its op.
    static func label(_ storage: TensorStorage, _ name: String) {
        state.withLock { s in
            let key = ObjectIdentifier(storage)
            if let entry = s.labels[key], entry.label == "untracked" {
                s.labels[key] = (name, entry.bytes)
            }
        }
    }

    /// Runs `body` (an op's backward) with what it allocates labelled after the op.
    static func inBackward<T>(of name: String, _ body: () -> T) -> T { labelling("grad ← " + name, body) }

    /// Runs `body` with what it allocates labelled `label`.
    static func labelling<T>(_ label: String, _ body: () -> T) -> T {
        let previous = state.withLock { s in
            let p = s.context
            s.context = label
            return p
        }
        defer { state.withLock { $0.context = previous } }
        return body()
    }

    /// Bytes by label at the peak, largest first (within a MiB of the true peak).
    public static var peakBreakdown: [(label: String, bytes: Int)] {
        state.withLock { s in s.atPeak.map { (label: $0.key, bytes: $0.value) }.sorted { $0.bytes > $1.bytes } }
    }

    /// The label of what was being allocated when the peak was reached (the op whose backward ran).
    public static var peakContext: String { state.withLock { $0.contextAtPeak } }

    /// Bytes by label now, largest first.
    public static var liveBreakdown: [(label: String, bytes: Int)] {
        state.withLock { s in
            var totals: [String: Int] = [:]
            for (_, entry) in s.labels { totals[entry.label, default: 0] += entry.bytes }
            return totals.map { (label: $0.key, bytes: $0.value) }.sorted { $0.bytes > $1.bytes }
        }
    }

    /// Starts a new peak from what is live now.
    public static func resetPeak() {
        state.withLock { s in
            s.peak = 0
            s.atPeak = [:]
        }
    }
}
