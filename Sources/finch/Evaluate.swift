import ArgumentParser
import Foundation
import FinchTensor
import FinchTrain
import FinchIO

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Top-1, top-5, per-class accuracy and confusion matrix of a checkpoint on an image folder.")

    @Option(help: "Finch checkpoint or weights file.")
    var checkpoint: String

    @Option(help: "ImageFolder root (its val/ when present) with the model's class folders.")
    var data: String

    @Option(help: "Images per batch.")
    var batch: Int = 32

    @Option(help: "Model name, for weights files that do not record it.")
    var model: String?

    @Option(help: "Write the confusion matrix as SVG here.")
    var confusionSvg: String?

    @Flag(help: "Use the checkpoint's EMA weights.")
    var ema = false

    @Option(help: "Write the metrics as JSON here.")
    var json: String?

    @Option(help: "Write the preprocessed inputs, logits and labels as safetensors here (to run the same inputs through another engine).")
    var saveOutputs: String?

    func validate() throws {
        try checkOption("batch", batch, OptionRange.batch)
    }

    mutating func run() throws {
        // Under mpirun each rank evaluates a share; rank 0 prints and writes.
        try Distributed.runCommand { comm in try evaluate(comm) }
    }

    func evaluate(_ comm: Communicator?) throws {
        if comm != nil, saveOutputs != nil { throw ValidationError("--save-outputs needs one process (not mpirun)") }
        func print(_ line: String) { if comm?.isRoot ?? true { Swift.print(line) } }
        let m = try ModelExport.load(URL(fileURLWithPath: checkpoint), modelName: model, ema: ema)
        let start = Date()
        var inputs: [Tensor] = [], logits: [Tensor] = [], labels: [Int] = []
        let keep = saveOutputs != nil
        let metrics = try ModelInference.evaluate(m, data: URL(fileURLWithPath: data), batch: batch, communicator: comm) { x, y, l in
            guard keep else { return }
            inputs.append(x.contiguous())
            logits.append(y.contiguous())
            labels += l
        }
        let seconds = Date().timeIntervalSince(start)
        if let saveOutputs {
            try writeSafeTensors([("input", .float32(Tensor.concat(inputs, axis: 0))), ("logits", .float32(Tensor.concat(logits, axis: 0))),
                                  ("labels", .int64(labels.map(Int64.init), shape: [labels.count]))],
                                 metadata: m.metadata, to: URL(fileURLWithPath: saveOutputs))
            print("inputs, logits and labels: \(saveOutputs)")
        }
        guard comm?.isRoot ?? true else { return }
        if let json {
            try writeJSON(["model": m.modelName, "images": metrics.count, "resolution": m.resolution,
                           "top1": metrics.top1, "top5": metrics.top5, "balanced_accuracy": metrics.balancedAccuracy,
                           "loss": metrics.meanLoss, "img_per_s": Double(metrics.count) / seconds,
                           "per_class_accuracy": Dictionary(uniqueKeysWithValues: zip(m.classes, metrics.perClassAccuracy))], to: json)
        }
        print("evaluate: \(m.modelName) on \(metrics.count) images at \(m.resolution) px (\(String(format: "%.1f", Double(metrics.count) / seconds)) img/s)")
        print(String(format: "top-1 %.4f  top-5 %.4f  balanced %.4f  loss %.4f", metrics.top1, metrics.top5,
                     metrics.balancedAccuracy, metrics.meanLoss))
        for (c, acc) in zip(m.classes, metrics.perClassAccuracy) { print("  \(c): \(String(format: "%.4f", acc))") }
        print(metrics.confusionTable(classes: m.classes))
        if let confusionSvg {
            try Plots.confusionMatrix(metrics.confusion, classes: m.classes)
                .write(to: URL(fileURLWithPath: confusionSvg), atomically: true, encoding: .utf8)
            print("confusion matrix: \(confusionSvg)")
        }
    }
}
