import Foundation

/// Writes a run's files as epochs finish: `metrics.jsonl` (one object per epoch), `metrics.csv`,
/// `summary.json`, `curves.svg` (loss per step and epoch, accuracy, learning rates), `confusion.svg` and `confusion.txt`, plus the
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

    /// This process's steps: position in epochs (epoch 1's steps in (0, 1]), loss, base rate.
    private var steps: (x: [Double], loss: [Double], lr: [Double]) = ([], [], [])

    public func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
        steps.x.append(Double(trainer.epoch) + Double(trainer.stepInEpoch) / Double(max(trainer.trainData.batchCount, 1)))
        steps.loss.append(Double(loss))
        steps.lr.append(trainer.baseLR)
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

        try Self.write(curves(t), to: directory.appendingPathComponent("curves.svg"))
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

    /// Loss (per step and per epoch), accuracy (top-5 only with more than 5 classes, where it
    /// can be below 1) and the learning rates, stacked in one SVG.
    func curves(_ t: Trainer) -> String {
        let h = t.history
        var lossSeries: [Plots.Series] = []
        if !steps.loss.isEmpty {
            let b = Plots.binned(x: steps.x, values: steps.loss)
            lossSeries.append(.init(name: "train loss (steps)", values: b.values, color: "#9ecae1", x: b.x, thin: true))
        }
        lossSeries.append(.init(name: "train loss", values: h["train/loss"] ?? [], color: "#1f77b4"))
        if let v = h["val/loss"] { lossSeries.append(.init(name: "val loss", values: v, color: "#d62728")) }
        var accSeries: [Plots.Series] = []
        if let v = h["train/top1"] { accSeries.append(.init(name: "train top-1", values: v, color: "#1f77b4")) }
        if let v = h["val/top1"] { accSeries.append(.init(name: "val top-1", values: v, color: "#d62728")) }
        if classes.count > 5, let v = h["val/top5"] { accSeries.append(.init(name: "val top-5", values: v, color: "#ff7f0e")) }
        if let v = h["val_ema/top1"] { accSeries.append(.init(name: "EMA val top-1", values: v, color: "#2ca02c")) }
        var lrSeries: [Plots.Series] = []
        if !steps.lr.isEmpty {
            let b = Plots.binned(x: steps.x, values: steps.lr)
            lrSeries.append(.init(name: "base lr (steps)", values: b.values, color: "#7f7f7f", x: b.x, thin: true))
        }
        // Each group's rate over the epochs; with many groups (layer decay) the highest and lowest.
        let groups = h.keys.filter { $0.hasPrefix("lr/") }.sorted()
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
        if groups.count <= colors.count {
            for (k, g) in groups.enumerated() { lrSeries.append(.init(name: String(g.dropFirst(3)), values: h[g]!, color: colors[k])) }
        } else {
            let rows = groups.map { h[$0]! }
            let n = rows.map(\.count).max() ?? 0
            func across(_ pick: ([Double]) -> Double?) -> [Double] {
                (0..<n).map { i in pick(rows.compactMap { i < $0.count && $0[i].isFinite ? $0[i] : nil }) ?? .nan }
            }
            lrSeries.append(.init(name: "highest group", values: across { $0.max() }, color: colors[0]))
            lrSeries.append(.init(name: "lowest group", values: across { $0.min() }, color: colors[1]))
        }
        let charts = [
            Plots.lineChart(title: "\(t.config.experiment): loss", yLabel: "cross-entropy", series: lossSeries),
            Plots.lineChart(title: "\(t.config.experiment): accuracy", yLabel: "accuracy", series: accSeries),
            Plots.lineChart(title: "\(t.config.experiment): learning rate", yLabel: "learning rate", series: lrSeries),
        ]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"\(380 * charts.count)\">\n"
        for (i, chart) in charts.enumerated() { svg += "<g transform=\"translate(0,\(380 * i))\">\(chart)</g>\n" }
        return svg + "</svg>\n"
    }

    static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url, options: .atomic)
    }
}
