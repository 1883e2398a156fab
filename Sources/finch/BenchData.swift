import ArgumentParser
import Foundation
import FinchTensor
import FinchData
import FinchTrain

/// Loader throughput on real photos: JPEG/PNG decode, timm's train (or eval) transform and
/// batching into [N,3,S,S], with no model, so the figure is what the loader can feed a trainer.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Images/s of decode + augment + batch on an image folder (its train/ when present).",
        discussion: "The last line reads `images/s=… workers=… resolution=…`.")

    @Option(help: "ImageFolder root (e.g. Datasets/flowers).") var data: String
    @Option(help: "Output size (square).") var resolution: Int = 128
    @Option(help: "Threads decoding and augmenting (0: the calling thread, no prefetch).") var workers: Int = 2
    @Option(help: "Images per batch.") var batch: Int = 32
    @Option(help: "Stop after this many images (default: one pass over the folder).") var images: Int?
    @Flag(help: "The eval transform (resize + centre crop) instead of the train one.") var eval = false
    @Option(help: "timm RandAugment string for the train transform, e.g. rand-m9-mstd0.5-inc1.") var autoAugment: String?
    @Option(help: "Passes over the data; the first one is reported separately (cold file cache).") var epochs: Int = 2

    func validate() throws {
        try checkOption("resolution", resolution, OptionRange.resolution)
        try checkOption("workers", workers, OptionRange.workers)
        try checkOption("batch", batch, OptionRange.batch)
        if let images { try checkOption("images", images, 1...TrainConfig.Limits.samples) }
        try checkOption("epochs", epochs, 1...1000)
    }

    mutating func run() throws {
        var root = URL(fileURLWithPath: data)
        if FileManager.default.fileExists(atPath: root.appendingPathComponent("train").path) { root = root.appendingPathComponent("train") }
        let folder = try ImageFolder(root: root)
        var samples = folder.samples
        if let images { samples = Array(samples.prefix(images)) }
        var t = ImageTransform(size: resolution, training: !eval)
        if let autoAugment { t.randAugment = try RandAugment(config: autoAugment) }
        let loader = DataLoader(samples: samples, transform: t, batchSize: batch, sampler: .random, dropLast: false, seed: 0)
        loader.workers = workers
        print("bench data: \(samples.count) images of \(folder.classes.count) classes from \(root.path), \(eval ? "eval" : "train") transform at \(resolution) px, batch \(batch), workers \(workers)")
        var rates: [Double] = []
        for epoch in 0..<max(1, epochs) {
            let start = Date()
            var n = 0
            for r in try loader.batches(epoch: epoch) { n += try r.get().images.shape[0] }
            let rate = Double(n) / Date().timeIntervalSince(start)
            rates.append(rate)
            print(String(format: "  pass %d: %d images in %.2f s, %.0f images/s", epoch + 1, n, Date().timeIntervalSince(start), rate))
        }
        let best = rates.count > 1 ? rates.dropFirst().max()! : rates[0]
        print(String(format: "images/s=%.0f workers=%d resolution=%d", best, workers, resolution))
    }
}
