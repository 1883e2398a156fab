import Foundation
import FinchTensor

/// A run's TensorBoard log, next to `metrics.jsonl`: the resolved config as text at the start;
/// every `interval` batches the mean training loss since the last point (`step/train/loss`) and
/// each parameter group's rate (`step/lr/<group>`) at the global step; after each epoch every
/// value of `metrics.jsonl` under the same name, at the epoch number (1-based, its "epoch").
/// Open with `tensorboard --logdir Experiments/runs`.
public final class TensorBoardLog: TrainerCallback {
    public let writer: TensorBoardWriter
    public let interval: Int
    public let classes: [String]
    private var lossSum: Double = 0
    private var losses = 0

    public init(directory: URL, configYAML: String, classes: [String], interval: Int) throws {
        ensure(interval >= 1, "TensorBoardLog: interval \(interval) must be at least 1")
        writer = try TensorBoardWriter(directory: directory)
        self.interval = interval
        self.classes = classes
        try writer.text("config", markdown: Self.codeBlock(configYAML), step: 0)
    }

    /// Markdown shows an indented block verbatim (YAML comments would otherwise become headings).
    static func codeBlock(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
    }

    public func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
        lossSum += Double(loss)
        losses += 1
        guard trainer.stepInEpoch % interval == 0 else { return }
        var values: [(tag: String, value: Double)] = [("step/train/loss", lossSum / Double(losses))]
        for g in trainer.optimizer.groups { values.append(("step/lr/\(g.name)", Double(g.lr))) }
        lossSum = 0
        losses = 0
        record { try writer.scalars(values, step: trainer.globalStep) }
    }

    public func trainerDidFinishEpoch(_ trainer: Trainer, record epoch: EpochRecord) {
        lossSum = 0
        losses = 0
        var values = epoch.values.filter { $0.value.isFinite }.sorted { $0.key < $1.key }.map { (tag: $0.key, value: $0.value) }
        for (name, accuracy) in zip(classes, epoch.perClassAccuracy) where accuracy.isFinite {
            values.append(("val/per_class_accuracy/\(name)", accuracy))
        }
        record { try writer.scalars(values, step: epoch.epoch + 1) }
    }

    /// A failed write does not stop training (as with the other run files); it is said.
    private func record(_ body: () throws -> Void) {
        do { try body() } catch {
            TrainLog.logger.warning("warning: \(error)")
        }
    }
}
