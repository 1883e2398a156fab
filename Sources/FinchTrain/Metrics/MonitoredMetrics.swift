import Foundation

/// The metric names a run records each epoch, so `checkpoint.monitor` and `early_stopping.monitor`
/// can be checked before training: a name the trainer never records would otherwise mean no
/// `best.h5` and no early stop, silently.
extension TrainConfig {
    /// Names in the epoch records of a run with this config (a validation set is always present in
    /// `train`). Learning rates are recorded per parameter group as `lr/<group>`.
    public var producedMetrics: [String] {
        var names = ["train/loss", "train/img_per_s", "val/loss", "val/top1", "val/top5", "val/balanced_accuracy",
                     "val/img_per_s", "epoch_seconds"]
        // Accuracy on mixed (soft) targets is not defined, so MixUp/CutMix runs record none.
        if !mixup.enabled { names.append("train/top1") }
        if ema?.evaluate == true { names += ["val_ema/top1", "val_ema/loss"] }
        return names
    }

    /// Habits from timm (`--eval-metric top1`, `loss`) and Keras (`val_accuracy`, `val_loss`)
    /// mapped to Finch's names. As in timm, the bare names mean the validation metric.
    public static let metricAliases: [String: String] = [
        "top1": "val/top1", "acc": "val/top1", "accuracy": "val/top1", "val_acc": "val/top1", "val_accuracy": "val/top1",
        "val_top1": "val/top1", "top5": "val/top5", "val_top5": "val/top5",
        "loss": "val/loss", "val_loss": "val/loss", "train_loss": "train/loss",
        "balanced_accuracy": "val/balanced_accuracy", "val_balanced_accuracy": "val/balanced_accuracy",
        "train_accuracy": "train/top1", "train_acc": "train/top1",
    ]

    /// `name` as the trainer records it, or an error naming the key with the nearest valid name.
    func canonicalMetric(_ name: String, key: String, source: String) throws -> String {
        let produced = producedMetrics
        let canonical = Self.metricAliases[name] ?? name
        if produced.contains(canonical) { return canonical }
        if canonical.hasPrefix("lr/") && canonical.count > 3 { return canonical }
        var message = "'\(name)' is not a metric this run records"
        if canonical == "train/top1" && mixup.enabled {
            message += " (with MixUp/CutMix there is no training accuracy)"
        } else if canonical.hasPrefix("val_ema/") && ema?.evaluate != true {
            message += " (val_ema/* needs an ema section with evaluate: true)"
        } else if let n = nearest(name, produced + Self.metricAliases.keys.sorted()) {
            message += " (did you mean '\(Self.metricAliases[n] ?? n)'?)"
        }
        throw ConfigError(file: source, key: key, message: message + "; it records \(produced.joined(separator: ", ")) and lr/<group>")
    }

    /// Checks both monitors and fills in `mode: auto` (min for losses, max otherwise); an explicit
    /// mode that would keep the worst epoch of a loss or accuracy is refused.
    mutating func resolveMonitors(source: String) throws {
        func mode(_ given: MonitorMode, metric: String, key: String) throws -> MonitorMode {
            let lowerIsBetter = metric.hasSuffix("loss") || metric == "epoch_seconds"
            let isAccuracy = metric.hasSuffix("top1") || metric.hasSuffix("top5") || metric.hasSuffix("accuracy")
            if given == .auto { return lowerIsBetter ? .min : .max }
            if given == .max && lowerIsBetter || given == .min && isAccuracy {
                throw ConfigError(file: source, key: key, message: "'\(given.rawValue)' would keep the worst epoch of \(metric); use \(given == .max ? "min" : "max") or leave it out")
            }
            return given
        }
        checkpoint.monitor = try canonicalMetric(checkpoint.monitor, key: "checkpoint.monitor", source: source)
        checkpoint.mode = try mode(checkpoint.mode, metric: checkpoint.monitor, key: "checkpoint.mode")
        if var es = earlyStopping {
            es.monitor = try canonicalMetric(es.monitor, key: "early_stopping.monitor", source: source)
            es.mode = try mode(es.mode, metric: es.monitor, key: "early_stopping.mode")
            earlyStopping = es
        }
    }
}
