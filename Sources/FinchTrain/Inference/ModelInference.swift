import Foundation
import FinchTensor
import FinchNN
import FinchData

/// Running a deployable model on image files.
public enum ModelInference {
    public struct Prediction: Sendable {
        public let file: String
        public let top: [(label: String, index: Int, probability: Double)]
    }

    /// Top-k classes with softmax probabilities for each image (decoded and preprocessed as in evaluation).
    /// `topK` defaults to 5, or to every class of a model with fewer; more than the model's classes is an error.
    public static func predict(_ m: DeployableModel, images: [URL], topK: Int? = nil, batch: Int = 16) throws -> [Prediction] {
        let topK = topK ?? min(5, m.model.numClasses)
        guard (1...m.model.numClasses).contains(topK) else {
            throw ModelExportError.invalidArgument(name: "--top-k", value: topK, expected: "in 1…\(m.model.numClasses) (the model's classes)")
        }
        try checkBatch(batch)
        let t = m.evalTransform
        try t.validate()   // crop_pct, mean/std come from a bundle's metadata: refuse bad ones before Int(_:) traps
        // Inference uses running statistics, whatever mode the caller's model was left in.
        let wasTraining = m.model.isTraining
        m.model.eval()
        defer { m.model.train(wasTraining) }
        var rng = RandomGenerator(seed: 0)
        var out: [Prediction] = []
        let k = topK
        for start in stride(from: 0, to: images.count, by: batch) {
            let part = Array(images[start..<min(images.count, start + batch)])
            let x = Tensor(uninitializedShape: [part.count, 3, m.resolution, m.resolution])
            for (i, url) in part.enumerated() {
                let image = try ImageDecoder.decode(contentsOf: url, targetShortSide: t.decodeShortSide)
                t.apply(image, rng: &rng, into: x.basePointer + i * 3 * m.resolution * m.resolution)
            }
            let probs = noGrad { m.model(x).softmax(axis: 1) }
            for (i, url) in part.enumerated() {
                let row = probs.narrowed(axis: 0, start: i, length: 1).squeezed(axis: 0)
                let (values, indices) = row.topk(k)
                out.append(Prediction(file: url.path, top: zip(values.scalars, indices).map { (m.classes[$1], $1, Double($0)) }))
            }
        }
        return out
    }

    /// Accuracy over a class-folder tree (ImageFolder; `root/val` when it exists) with the model's classes.
    /// `onBatch` sees each batch's preprocessed input, logits and labels (e.g. to hand the same
    /// inputs to another engine).
    /// With a communicator (under mpirun) each rank evaluates its share of every batch and the
    /// result is the whole set's, each image counted once.
    public static func evaluate(_ m: DeployableModel, data root: URL, batch: Int = 32, workers: Int = 2,
                                communicator: Communicator? = nil,
                                onBatch: ((Tensor, Tensor, [Int]) -> Void)? = nil) throws -> ClassificationMetrics {
        try checkBatch(batch)
        try checkWorkers(workers)
        let wasTraining = m.model.isTraining
        m.model.eval()
        defer { m.model.train(wasTraining) }
        let valRoot = FileManager.default.fileExists(atPath: root.appendingPathComponent("val").path) ? root.appendingPathComponent("val") : root
        let folder = try ImageFolder(root: valRoot)
        guard folder.classes == m.classes else {
            throw ConfigError(file: valRoot.path, key: "classes",
                              message: "folders \(folder.classes) differ from the model's classes \(m.classes)")
        }
        let loader = DataLoader(samples: folder.samples, transform: m.evalTransform, batchSize: batch, sampler: .sequential,
                                dropLast: false, seed: 0, skipBadImages: false)
        loader.workers = workers
        if let communicator { loader.shard = try Shard(index: communicator.rank, count: communicator.size) }
        var metrics = ClassificationMetrics(numClasses: m.model.numClasses)
        let it = try loader.batches(epoch: 0)
        while let next = it.next() {
            let (x, labels) = try next.get()
            if labels.isEmpty { continue }   // a last batch smaller than the ranks
            let logits = noGrad { m.model(x) }
            metrics.add(logits: logits, labels: labels, meanLoss: noGrad { Loss.crossEntropy(logits, labels: labels).item })
            onBatch?(x, logits, labels)
        }
        return communicator.map { Distributed.combine(metrics, over: $0) } ?? metrics
    }
}

extension ModelInference {
    static func checkBatch(_ batch: Int) throws {
        guard (1...TrainConfig.Limits.batchSize).contains(batch) else {
            throw ModelExportError.invalidArgument(name: "--batch", value: batch, expected: "in 1…\(TrainConfig.Limits.batchSize)")
        }
    }

    static func checkWorkers(_ workers: Int) throws {
        guard (0...TrainConfig.Limits.workers).contains(workers) else {
            throw ModelExportError.invalidArgument(name: "--workers", value: workers, expected: "in 0…\(TrainConfig.Limits.workers)")
        }
    }
}
