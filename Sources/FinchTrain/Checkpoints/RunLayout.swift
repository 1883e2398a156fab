import Foundation
import FinchIO

/// Where a run's files go: `<output>/<experiment>/<timestamp>/` for its logs and
/// `<checkpoints>/<experiment>/<timestamp>/` for its checkpoints, the same timestamp for both, so
/// no run overwrites another's `best.h5`. `<checkpoints>/<experiment>/latest` is a relative
/// symbolic link to the newest run folder holding a `last.h5` (moved when a run writes its first
/// one, so it always leads to a checkpoint a resume can start from).
public enum RunLayout {
    public static let latestName = "latest"

    /// `yyyyMMdd-HHmmss` in UTC, with `-2`, `-3`… when a run of the experiment already took that
    /// second in either root.
    public static func newTimestamp(outputRoot: URL, checkpointRoot: URL, experiment: String, date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        let base = f.string(from: date)
        func taken(_ name: String) -> Bool {
            [outputRoot, checkpointRoot].contains { root in
                var isDirectory: ObjCBool = false
                // A dangling link or a plain file of that name counts as taken as well.
                let path = root.appendingPathComponent(experiment).appendingPathComponent(name).path
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                    || (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
            }
        }
        var name = base, n = 1
        while taken(name) {
            n += 1
            name = "\(base)-\(n)"
        }
        return name
    }

    /// Points `<run folder>/../latest` at the run folder: a new link under a temporary name,
    /// renamed over the old one, so a reader always finds one of the two.
    public static func markLatest(_ runCheckpoints: URL) throws {
        let experiment = runCheckpoints.deletingLastPathComponent()
        let link = experiment.appendingPathComponent(latestName)
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == runCheckpoints.lastPathComponent { return }
        let temporary = experiment.appendingPathComponent(".\(latestName).\(getpid()).link.tmp")
        try? FileManager.default.removeItem(at: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary.path, withDestinationPath: runCheckpoints.lastPathComponent)
        guard rename(temporary.path, link.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw CheckpointError.mismatch(file: link.path, what: "cannot point it at \(runCheckpoints.lastPathComponent): \(reason)")
        }
    }

    /// What `--resume` names: a checkpoint file as it is; a run's checkpoint folder → its
    /// `last.h5`; an experiment's folder → `latest/last.h5` (or the `last.h5` directly inside,
    /// from Finch versions before run folders). The error names the paths tried.
    public static func resumeCheckpoint(_ url: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return url }
        let candidates = [url.appendingPathComponent("last.h5"), url.appendingPathComponent(latestName).appendingPathComponent("last.h5")]
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        throw CheckpointError.mismatch(file: url.path, what: "is a folder without a checkpoint to resume from (tried \(candidates.map(\.path).joined(separator: " and "))); give a checkpoint file, a run's checkpoint folder or the experiment's folder")
    }
}

/// Moves `latest` to this run once its folder holds a `last.h5` (after the step or epoch that
/// wrote it). A failure to move the link is said, not fatal: the checkpoints themselves are fine.
public final class LatestRunLink: TrainerCallback {
    public let runCheckpoints: URL
    private var linked = false

    public init(runCheckpoints: URL) { self.runCheckpoints = runCheckpoints }

    public func trainerDidFinishStep(_ trainer: Trainer, loss: Float) { update() }
    public func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) { update() }

    /// Also for a `last.h5` written outside the trainer's loop (the stop request's).
    public func update() {
        guard !linked, FileManager.default.fileExists(atPath: runCheckpoints.appendingPathComponent("last.h5").path) else { return }
        do {
            try RunLayout.markLatest(runCheckpoints)
            linked = true
        } catch {
            linked = true
            TrainLog.logger.warning("warning: \(error)")
        }
    }
}
