import Foundation

/// Writes a run's files as epochs finish: `metrics.jsonl` (one object per epoch), `metrics.csv`,
/// `summary.json`, `curves.svg` (loss and accuracy), `confusion.svg` and `confusion.txt`, plus the
/// resolved `config.yaml` at the start. Each file is replaced atomically.
public final class RunLog: TrainerCallback {
    public let directory: URL
    public let classes: [String]

    public init(directory: URL, configYAML: String, classes: [String]) throws {
        self.directory = directory
        self.classes = classes
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.write(configYAML, to: directory.appendingPathComponent("config.yaml"))
    }

    /// `Experiments/runs/<experiment>/<timestamp>/`.
    public static func newRunDirectory(root: String, experiment: String, date: Date = Date()) -> URL {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return URL(fileURLWithPath: root).appendingPathComponent(experiment).appendingPathComponent(f.string(from: date))
    }

    public func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
        do { try write(trainer) } catch {
            TrainLog.logger.warning("warning: could not write run files in \(directory.path): \(error)")
        }
    }

    func write(_ t: Trainer) throws {
        let keys = Set(t.records.flatMap { $0.values.keys }).sorted()
        var jsonl = ""
        for r in t.records {
            var obj: [String: Any] = ["epoch": r.epoch + 1]
            for (k, v) in r.values where v.isFinite { obj[k] = v }
            if !r.perClassAccuracy.isEmpty {
                obj["val/per_class_accuracy"] = Dictionary(uniqueKeysWithValues: zip(classes, r.perClassAccuracy).map { ($0.0, $0.1) })
            }
            jsonl += String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self) + "\n"
        }
        try Self.write(jsonl, to: directory.appendingPathComponent("metrics.jsonl"))
        var csv = (["epoch"] + keys).joined(separator: ",") + "\n"
        for r in t.records {
            csv += ([String(r.epoch + 1)] + keys.map { k in r.values[k].map { $0.isFinite ? String($0) : "" } ?? "" }).joined(separator: ",") + "\n"
        }
        try Self.write(csv, to: directory.appendingPathComponent("metrics.csv"))

        let h = t.history
        var lossSeries = [Plots.Series(name: "train loss", values: h["train/loss"] ?? [], color: "#1f77b4")]
        if let v = h["val/loss"] { lossSeries.append(.init(name: "val loss", values: v, color: "#d62728")) }
        var accSeries: [Plots.Series] = []
        if let v = h["train/top1"] { accSeries.append(.init(name: "train top-1", values: v, color: "#1f77b4")) }
        if let v = h["val/top1"] { accSeries.append(.init(name: "val top-1", values: v, color: "#d62728")) }
        if let v = h["val/top5"] { accSeries.append(.init(name: "val top-5", values: v, color: "#ff7f0e")) }
        if let v = h["val_ema/top1"] { accSeries.append(.init(name: "EMA val top-1", values: v, color: "#2ca02c")) }
        let loss = Plots.lineChart(title: "\(t.config.experiment): loss", yLabel: "cross-entropy", series: lossSeries)
        let acc = Plots.lineChart(title: "\(t.config.experiment): accuracy", yLabel: "accuracy", series: accSeries)
        // One SVG with both charts stacked.
        let both = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"760\">\n<g>\(loss)</g>\n<g transform=\"translate(0,380)\">\(acc)</g>\n</svg>\n"
        try Self.write(both, to: directory.appendingPathComponent("curves.svg"))
        if let last = t.records.last(where: { !$0.confusion.isEmpty }) {
            try Self.write(Plots.confusionMatrix(last.confusion, classes: classes, title: "Confusion matrix, epoch \(last.epoch + 1) (rows: true, columns: predicted)"),
                           to: directory.appendingPathComponent("confusion.svg"))
            try Self.write(ClassificationMetrics.confusionTable(last.confusion, classes: classes), to: directory.appendingPathComponent("confusion.txt"))
        }
        var summary: [String: Any] = [
            "experiment": t.config.experiment, "model": t.model.modelName, "epochs_run": t.records.count,
            "global_step": t.globalStep, "classes": classes,
            "parameters": t.model.parameterCount, "trainable_parameters": t.model.trainableParameterCount,
            "monitor": t.config.checkpoint.monitor, "best_epoch": t.bestEpoch + 1,
            "total_seconds": t.records.reduce(0) { $0 + ($1.values["epoch_seconds"] ?? 0) },
        ]
        if t.bestMetric.isFinite { summary["best_metric"] = t.bestMetric }
        if let last = t.records.last { summary["final"] = last.values.filter { $0.value.isFinite } }
        try Self.write(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self) + "\n",
                       to: directory.appendingPathComponent("summary.json"))
    }

    static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url, options: .atomic)
    }
}
