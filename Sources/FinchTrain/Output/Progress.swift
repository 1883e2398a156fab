import Foundation
import Synchronization
import Logging
import FinchTensor

/// Where an epoch is, for a live display (a terminal bar, an app's progress view).
public struct ProgressUpdate: Sendable, Equatable {
    public var epoch, epochs, batch, batches: Int
    public var loss: Double
    /// Top-1 on the training batches so far; nil when targets are soft (mixup, distillation).
    public var accuracy: Double?
    public var imagesPerSecond: Double
    /// Seconds left in the epoch.
    public var eta: Double

    public init(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double?, imagesPerSecond: Double, eta: Double) {
        (self.epoch, self.epochs, self.batch, self.batches) = (epoch, epochs, batch, batches)
        (self.loss, self.accuracy, self.imagesPerSecond, self.eta) = (loss, accuracy, imagesPerSecond, eta)
    }
}

/// Shows mid-epoch progress. The library draws nothing itself; the executables install a
/// terminal bar (`TerminalProgressBar`, through `ConsoleOutput.bootstrap()`).
public protocol ProgressDisplay: AnyObject, Sendable {
    func show(_ update: ProgressUpdate)
    /// The epoch's display is done: its summary line (a log record) comes next.
    func clear()
}

/// Mid-epoch progress for a live display, at most ~8 updates a second, and the end-of-epoch
/// lines as `finch.train` records (`TrainLog`).
public final class ProgressReporter {
    /// A live display follows the epoch, so plain step lines (`StepLog`) are not needed. The
    /// default asks whether stdout is a terminal, where the executables draw their bar.
    public let isTerminal: Bool
    /// Receives the updates when `isTerminal`; nil shows nothing.
    public var display: ProgressDisplay?
    private var lastDraw = Date.distantPast

    /// What a new reporter's `display` starts as: nil, unless an app installed one
    /// (`ConsoleOutput.bootstrap()` installs the terminal bar).
    public static var defaultDisplay: ProgressDisplay? {
        get { installed.withLock { $0 } }
        set { installed.withLock { $0 = newValue } }
    }
    private static let installed = Mutex<ProgressDisplay?>(nil)

    /// Plain progress lines at each tenth of an epoch where no bar is drawn (under mpirun).
    public let plainLines: Bool
    /// Where the plain lines and the epoch lines go (a `finch.train` record by default).
    private let writeLine: (String) -> Void

    /// `isTerminal` and `plainLines` default to what `ProgressMode.current` says for stdout.
    public init(isTerminal: Bool = ProgressMode.current.drawsBar(onTerminal: isatty(fileno(stdout)) != 0),
                display: ProgressDisplay? = ProgressReporter.defaultDisplay,
                plainLines: Bool = ProgressMode.current.plainLines(),
                writeLine: @escaping (String) -> Void = { TrainLog.logger.info("\($0)") }) {
        self.isTerminal = isTerminal
        self.display = display
        self.plainLines = plainLines && !isTerminal
        self.writeLine = writeLine
    }

    /// Mid-epoch update (passed on at most ~8 times a second, and for the last batch).
    public func step(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double?, imagesPerSecond: Double, eta: Double) {
        if plainLines { plainLine(epoch: epoch, epochs: epochs, batch: batch, batches: batches, loss: loss, accuracy: accuracy,
                                  imagesPerSecond: imagesPerSecond, eta: eta) }
        guard isTerminal, let display, Date().timeIntervalSince(lastDraw) > 0.125 || batch == batches else { return }
        lastDraw = Date()
        display.show(ProgressUpdate(epoch: epoch, epochs: epochs, batch: batch, batches: batches, loss: loss, accuracy: accuracy,
                                    imagesPerSecond: imagesPerSecond, eta: eta))
    }

    /// `epoch 1/3  40% 24/60 loss 0.4321 acc 0.870 512 img/s ETA 0:12` when the epoch passes a tenth
    /// (every batch when it has fewer than ten).
    private func plainLine(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double?, imagesPerSecond: Double, eta: Double) {
        guard batches > 0, batches < 10 || 10 * batch / batches > 10 * (batch - 1) / batches else { return }
        let acc = accuracy.map { String(format: " acc %.3f", $0) } ?? ""
        writeLine(String(format: "epoch %d/%d %3d%% %d/%d loss %.4f%@ %.0f img/s ETA %@", epoch, epochs, 100 * batch / batches, batch, batches,
                         loss, acc, imagesPerSecond, Self.duration(eta)))
    }

    /// End of an epoch: one line (replacing the bar on a terminal).
    public func epochLine(_ text: String) {
        if isTerminal { display?.clear() }
        writeLine(text)
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// Where mid-epoch progress goes (`FINCH_PROGRESS`): `auto` draws the bar on a terminal, but
/// not under mpirun, whose ranks get a pseudo-terminal even when its output goes to a file, so
/// rank 0 prints a plain line at each tenth of an epoch instead; `bar` draws it on a terminal
/// regardless; `lines` never draws it.
public enum ProgressMode: String, CaseIterable, Sendable {
    case auto, bar, lines

    /// The environment's mode; a value other than the three names is refused.
    public static func from(_ environment: [String: String]) throws -> ProgressMode {
        guard let v = environment["FINCH_PROGRESS"], !v.isEmpty else { return .auto }
        guard let m = ProgressMode(rawValue: v) else { throw ProgressModeError(value: v) }
        return m
    }

    /// This process's mode (`auto` when FINCH_PROGRESS is invalid: the commands refuse it first).
    public static var current: ProgressMode { (try? from(ProcessInfo.processInfo.environment)) ?? .auto }
    /// Whether mpirun started this process.
    public static var underMPI: Bool { Distributed.launchedByMPI() }

    public func drawsBar(onTerminal: Bool, underMPI: Bool = ProgressMode.underMPI) -> Bool {
        switch self {
        case .auto: return onTerminal && !underMPI
        case .bar: return onTerminal
        case .lines: return false
        }
    }

    /// Whether tenth-of-epoch lines replace the bar (under mpirun, or when asked for).
    public func plainLines(underMPI: Bool = ProgressMode.underMPI) -> Bool {
        switch self {
        case .auto: return underMPI
        case .bar: return false
        case .lines: return true
        }
    }
}

public struct ProgressModeError: Error, CustomStringConvertible {
    public let value: String
    public var description: String {
        "FINCH_PROGRESS=\(value): expected \(ProgressMode.allCases.map(\.rawValue).joined(separator: ", ")) (auto: a bar on a terminal, lines under mpirun)"
    }
}

/// `log_interval` when stdout is not a terminal (a log file, CI, `nohup`): the bar is not drawn
/// there, so every `interval` batches one plain line with the position, the mean loss since the
/// last line, the base learning rate as scheduled (`Trainer.baseLR`) and the throughput (by default a `finch.train`
/// record at `.info`).
public final class StepLog: TrainerCallback {
    public let interval: Int
    private let write: (String) -> Void
    private var lossSum: Double = 0
    private var losses = 0
    private var since = Date()

    public init(interval: Int, write: @escaping (String) -> Void = { TrainLog.logger.info("\($0)") }) {
        ensure(interval >= 1, "StepLog: interval \(interval) must be at least 1")
        self.interval = interval
        self.write = write
    }

    public func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
        lossSum += Double(loss)
        losses += 1
        guard trainer.stepInEpoch % interval == 0 else { return }
        let now = Date()
        let rate = Double(losses * trainer.config.data.batchSize) / max(now.timeIntervalSince(since), 1e-9)
        let lr = trainer.baseLR
        write(String(format: "epoch %d/%d step %d/%d (global %d) loss %.4f lr %.2e %.0f img/s", trainer.epoch + 1, trainer.totalEpochs,
                     trainer.stepInEpoch, trainer.trainData.batchCount, trainer.globalStep, lossSum / Double(losses), lr, rate))
        lossSum = 0
        losses = 0
        since = now
    }

    public func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
        lossSum = 0
        losses = 0
        since = Date()
    }
}
