import Foundation
import FinchTensor
import FinchNN
import FinchData

/// "Pretrained as-is": a frozen backbone classifies by cosine similarity between an image's pooled
/// features (the pre-logits, unit length) and each class's mean training feature (unit length).
/// No parameter changes, so it measures how far ImageNet features separate the new classes.
public enum NearestClassMean {
    public struct Result: Sendable {
        public let metrics: ClassificationMetrics
        public let classes: [String]
        public let featureDimension: Int
        public let trainImages: Int
        /// Images per second through decode, transform and the frozen forward, for the val pass.
        public let evalImagesPerSecond: Double
        public let seconds: Double
    }

    /// Uses `root/train` for the class means and `root/val` for scoring, both with the model's
    /// evaluation transform at `resolution` (default: the model's).
    /// With a communicator (under mpirun) each rank extracts its share of every batch; the class
    /// sums and the metrics are added over the ranks.
    public static func run(_ m: DeployableModel, data root: URL, resolution: Int? = nil, batch: Int = 32,
                           workers: Int = 2, communicator: Communicator? = nil) throws -> Result {
        try ModelInference.checkBatch(batch)
        try ModelInference.checkWorkers(workers)
        if let resolution, !(TrainConfig.Limits.minImageSize...TrainConfig.Limits.maxImageSize).contains(resolution) {
            throw ModelExportError.invalidArgument(name: "--resolution", value: resolution,
                                                   expected: "in \(TrainConfig.Limits.minImageSize)…\(TrainConfig.Limits.maxImageSize)")
        }
        let start = Date()
        let trainRoot = root.appendingPathComponent("train"), valRoot = root.appendingPathComponent("val")
        let train = try ImageFolder(root: trainRoot), val = try ImageFolder(root: valRoot)
        guard train.classes == val.classes else {
            throw ConfigError(file: valRoot.path, key: "classes", message: "folders \(val.classes) differ from \(trainRoot.path)'s \(train.classes)")
        }
        var t = m.evalTransform
        if let resolution { t.size = resolution }
        let k = train.classes.count

        func features(_ folder: ImageFolder, _ body: (Tensor, [Int]) -> Void) throws {
            let loader = DataLoader(samples: folder.samples, transform: t, batchSize: batch, sampler: .sequential,
                                    dropLast: false, seed: 0, skipBadImages: false)
            loader.workers = workers
            if let communicator { loader.shard = try Shard(index: communicator.rank, count: communicator.size) }
            let it = try loader.batches(epoch: 0)
            while let next = it.next() {
                let (x, labels) = try next.get()
                if labels.isEmpty { continue }
                let f = noGrad { m.model.forwardHead(m.model.forwardFeatures(x), preLogits: true) }
                body(unitRows(f), labels)
            }
        }

        var sums: [[Double]] = [], dim = 0
        try features(train) { f, labels in
            dim = f.shape[1]
            if sums.isEmpty { sums = Array(repeating: Array(repeating: 0, count: dim), count: k) }
            let v = f.scalars
            for (i, c) in labels.enumerated() { for j in 0..<dim { sums[c][j] += Double(v[i * dim + j]) } }
        }
        if let communicator {
            // A rank whose shares were all empty has no dimension yet: take the others'.
            var d = [Double(dim)]
            communicator.allreduceMax(&d)
            dim = Int(d[0])
            var flat = sums.isEmpty ? [Double](repeating: 0, count: k * dim) : sums.flatMap { $0 }
            communicator.allreduceSum(&flat)
            sums = dim == 0 ? [] : (0..<k).map { Array(flat[($0 * dim)..<(($0 + 1) * dim)]) }
        }
        guard !sums.isEmpty else { throw ConfigError(file: trainRoot.path, key: "train", message: "has no images") }
        let centroids = unitRows(Tensor(sums.flatMap { $0.map(Float.init) }, shape: [k, dim]))

        var metrics = ClassificationMetrics(numClasses: k)
        let evalStart = Date()
        try features(val) { f, labels in
            metrics.add(logits: f.matmul(centroids.transposed()), labels: labels)
        }
        if let communicator { metrics = Distributed.combine(metrics, over: communicator) }
        let evalSeconds = Date().timeIntervalSince(evalStart)
        return Result(metrics: metrics, classes: train.classes, featureDimension: dim, trainImages: train.count,
                      evalImagesPerSecond: Double(metrics.count) / max(evalSeconds, 1e-9), seconds: Date().timeIntervalSince(start))
    }

    /// Each row divided by its Euclidean norm (a zero row stays zero).
    static func unitRows(_ x: Tensor) -> Tensor {
        let n = x.shape[0], d = x.shape[1]
        var v = x.scalars
        for i in 0..<n {
            var s: Double = 0
            for j in 0..<d { s += Double(v[i * d + j]) * Double(v[i * d + j]) }
            let inv = s > 0 ? Float(1 / s.squareRoot()) : 0
            for j in 0..<d { v[i * d + j] *= inv }
        }
        return Tensor(v, shape: [n, d])
    }
}
