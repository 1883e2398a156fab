import ArgumentParser
import Foundation
import FinchTrain
import FinchNN

struct NearestClassMeanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ncm",
        abstract: "Pretrained as-is: nearest class mean (cosine) on a frozen model's pooled features; no training.",
        discussion: "Class means come from DATA/train, scores from DATA/val, both through the model's evaluation transform.")

    @Option(help: "Weights file (safetensors, HDF5, .pth) or Finch checkpoint.")
    var weights: String

    @Option(help: "Model name, for weights files that do not record it.")
    var model: String?

    @Option(help: "ImageFolder root with train/ and val/.")
    var data: String

    @Option(help: "Input resolution (default: the model's).")
    var resolution: Int?

    @Option(help: "Images per batch.")
    var batch: Int = 32

    @Option(help: "Decoding threads.")
    var workers: Int = 2

    @Option(help: "Write the result as JSON here (the shape of train's summary.json).")
    var json: String?

    func validate() throws {
        if let resolution { try checkOption("resolution", resolution, OptionRange.resolution) }
        try checkOption("batch", batch, OptionRange.batch)
        try checkOption("workers", workers, OptionRange.workers)
    }

    mutating func run() throws {
        // Under mpirun each rank extracts a share; rank 0 prints and writes.
        try Distributed.runCommand { comm in try ncm(comm) }
    }

    func ncm(_ comm: Communicator?) throws {
        let m = try ModelExport.load(URL(fileURLWithPath: weights), modelName: model)
        let r = try NearestClassMean.run(m, data: URL(fileURLWithPath: data), resolution: resolution, batch: batch, workers: workers,
                                         communicator: comm)
        guard comm?.isRoot ?? true else { return }
        let res = resolution ?? m.resolution
        print("ncm: \(m.modelName) at \(res) px, \(r.featureDimension)-d pooled features, \(r.trainImages) train images → \(r.metrics.count) val images")
        print(String(format: "top-1 %.4f  balanced %.4f  eval %.1f img/s  total %.1f s", r.metrics.top1, r.metrics.balancedAccuracy,
                     r.evalImagesPerSecond, r.seconds))
        for (c, acc) in zip(r.classes, r.metrics.perClassAccuracy) { print("  \(c): \(String(format: "%.4f", acc))") }
        if let json {
            // The head is not used, so it does not count.
            let headParameters = m.model.namedParameters().filter { Module.matches($0.0, prefixes: m.model.classifierPrefixes) }
                .reduce(0) { $0 + $1.1.count }
            try writeJSON(["experiment": "ncm", "model": m.modelName, "epochs_run": 0, "resolution": res,
                           "parameters": m.model.parameterCount - headParameters, "trainable_parameters": 0,
                           "total_seconds": r.seconds, "train_images": r.trainImages,
                           "final": ["val/top1": r.metrics.top1, "val/balanced_accuracy": r.metrics.balancedAccuracy,
                                     "val/img_per_s": r.evalImagesPerSecond]], to: json)
        }
    }
}
