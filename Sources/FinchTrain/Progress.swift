import Foundation
import FinchTensor

/// Progress display: a redrawn bar with rate and ETA on a terminal, plain lines otherwise.
public final class ProgressReporter {
    public let isTerminal: Bool
    private var lastDraw = Date.distantPast

    public init(isTerminal: Bool = isatty(fileno(stdout)) != 0) { self.isTerminal = isTerminal }

    /// Mid-epoch update (drawn at most ~8 times a second, only on a terminal).
    public func step(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double?, imagesPerSecond: Double, eta: Double) {
        guard isTerminal, Date().timeIntervalSince(lastDraw) > 0.125 || batch == batches else { return }
        lastDraw = Date()
        let width = 24, filled = batches == 0 ? width : width * batch / batches
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let acc = accuracy.map { String(format: " acc %.3f", $0) } ?? ""
        let line = String(format: "\repoch %d/%d %@ %d/%d loss %.4f%@ %.0f img/s ETA %@ ", epoch, epochs, bar, batch, batches,
                          loss, acc, imagesPerSecond, Self.duration(eta))
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// End of an epoch: one line (replacing the bar on a terminal).
    public func epochLine(_ text: String) {
        if isTerminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        print(text)
        fflush(stdout)
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// `log_interval` when stdout is not a terminal (a log file, CI, `nohup`): the bar is not drawn
/// there, so every `interval` batches one plain line with the position, the mean loss since the
/// last line, the largest group learning rate and the throughput.
public final class StepLog: TrainerCallback {
    public let interval: Int
    private let write: (String) -> Void
    private var lossSum: Double = 0
    private var losses = 0
    private var since = Date()

    public init(interval: Int, write: @escaping (String) -> Void = { print($0); fflush(stdout) }) {
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
        let lr = trainer.optimizer.groups.map { Double($0.lr) }.max() ?? 0
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
