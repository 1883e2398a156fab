import Foundation
import FinchTrain

/// Scripting Finch from Swift: sweep three learning rates for head-only fine-tuning of the
/// pretrained EfficientNet-Lite0 on a small subset of the flowers photos and print a table.
///
///     swift run -c release lr-sweep [config] [images-per-class] [epochs]
///
/// Each run is the config with `optimizer.lr` overridden (exactly as `train --set` does), a
/// per-class cap on the training images, and its own experiment name so outputs do not mix.
@main
struct LRSweep {
    /// A callback sees every step and epoch; here it keeps the last few losses for the table.
    final class LossTrace: TrainerCallback {
        var losses: [Float] = []
        func trainerDidFinishStep(_ trainer: Trainer, loss: Float) { losses.append(loss) }
    }

    static func main() throws {
        ConsoleOutput.bootstrap()   // epoch lines and the bar, as `train` prints them
        let args = CommandLine.arguments.dropFirst()
        let config = URL(fileURLWithPath: args.first ?? "Experiments/flowers-head.yaml")
        let perClass = args.dropFirst().first.flatMap(Double.init) ?? 60
        let epochs = args.dropFirst(2).first ?? "2"
        let rates = ["3.0e-4", "1.0e-3", "3.0e-3"]
        var rows: [(lr: String, top1: Double, loss: Double, lastTrainLoss: Float, seconds: Double)] = []
        for lr in rates {
            var cfg = try TrainConfig.load(config, overrides: ["optimizer.lr=\(lr)", "schedule.epochs=\(epochs)",
                                                               "experiment=lr-sweep-\(lr)"])
            cfg.data.classLimits = ["daisy", "dandelion", "rose", "sunflower", "tulip"].map { ($0, perClass) }
            let setup = try TrainingSetup(config: cfg)
            let trace = LossTrace()
            setup.trainer.callbacks.append(trace)
            let start = Date()
            let records = try setup.trainer.fit()
            let last = try XCheck.unwrap(records.last, "no epoch finished for lr \(lr)")
            rows.append((lr, last.values["val/top1"] ?? .nan, last.values["val/loss"] ?? .nan,
                         trace.losses.suffix(10).reduce(0, +) / Float(max(1, min(10, trace.losses.count))),
                         Date().timeIntervalSince(start)))
        }
        print("\n| lr | val top-1 | val loss | train loss (last 10 steps) | seconds |")
        print("|---|---|---|---|---|")
        for r in rows {
            print(String(format: "| %@ | %.4f | %.4f | %.4f | %.0f |", r.lr, r.top1, r.loss, r.lastTrainLoss, r.seconds))
        }
        if let best = rows.max(by: { $0.top1 < $1.top1 }) { print("best lr: \(best.lr)") }
    }
}

enum XCheck {
    struct Missing: Error, CustomStringConvertible { let description: String }
    static func unwrap<T>(_ v: T?, _ message: String) throws -> T {
        guard let v else { throw Missing(description: message) }
        return v
    }
}
