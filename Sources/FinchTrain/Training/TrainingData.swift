import FinchTensor

/// A batch as the trainer consumes it: normalised images [N,3,H,W] and class labels.
public struct Batch {
    public let images: Tensor
    public let labels: [Int]
    /// The same draws rendered for a distillation teacher at its own size and normalisation
    /// (`distill.teacher.view: own`); nil when the source renders one view.
    public let teacherImages: Tensor?
    public init(images: Tensor, labels: [Int], teacherImages: Tensor? = nil) {
        ensure(images.rank == 4 && images.shape[0] == labels.count,
                     "Batch: images \(images.shape) for \(labels.count) labels")
        ensure(teacherImages.map { $0.rank == 4 && $0.shape[0] == labels.count } ?? true,
               "Batch: teacher images \(teacherImages?.shape ?? []) for \(labels.count) labels")
        self.images = images
        self.labels = labels
        self.teacherImages = teacherImages
    }
}

/// Where batches come from: the data loader in practice, anything in tests and scripts.
/// The order of an epoch's batches must depend only on the epoch (and the source's seed), so
/// a resumed run can skip the batches it already trained on.
public protocol BatchSource: AnyObject {
    var classes: [String] { get }
    /// Batches per epoch.
    var batchCount: Int { get }
    /// The epoch's batches, starting at batch `start` (for resuming mid-epoch).
    func batches(epoch: Int, startingAt start: Int) throws -> AnyIterator<Result<Batch, Error>>
    /// Images that failed to load and were skipped in the last epoch (loader policy `skip`).
    var skippedCount: Int { get }
    /// The side of the teacher's own view each batch carries (`Batch.teacherImages`), nil if none.
    var teacherViewSize: Int? { get }
}

extension BatchSource {
    public var skippedCount: Int { 0 }
    public var teacherViewSize: Int? { nil }
}

/// MixUp/CutMix or any batch-level augmentation producing soft targets [N, classes].
public protocol BatchMixer: AnyObject {
    /// Mixes `images` in place (or returns new ones) and returns them with their soft targets.
    func mix(_ batch: Batch, numClasses: Int) -> (images: Tensor, targets: Tensor)
    /// `mix`, and the batch's teacher view (if any) mixed by the same draws; a mixer that cannot
    /// returns nil for it and the trainer refuses the run rather than give the teacher another view.
    func mixViews(_ batch: Batch, numClasses: Int) -> (images: Tensor, targets: Tensor, teacherImages: Tensor?)
    /// State of its random stream, for checkpoints.
    var randomState: [UInt64] { get }
    func restoreRandomState(_ state: [UInt64]) throws
}

extension BatchMixer {
    public func mixViews(_ batch: Batch, numClasses: Int) -> (images: Tensor, targets: Tensor, teacherImages: Tensor?) {
        let (images, targets) = mix(batch, numClasses: numClasses)
        return (images, targets, nil)
    }
}

/// Batches held in memory (tests, small experiments).
public final class InMemoryBatches: BatchSource {
    public let classes: [String]
    let images: Tensor
    let labels: [Int]
    let batchSize: Int
    let shuffleSeed: UInt64?

    public init(images: Tensor, labels: [Int], classes: [String], batchSize: Int, shuffleSeed: UInt64? = nil) {
        self.images = images
        self.labels = labels
        self.classes = classes
        self.batchSize = batchSize
        self.shuffleSeed = shuffleSeed
    }

    public var batchCount: Int { (labels.count + batchSize - 1) / batchSize }

    public func batches(epoch: Int, startingAt start: Int) throws -> AnyIterator<Result<Batch, Error>> {
        var order = Array(0..<labels.count)
        if let s = shuffleSeed {
            var rng = RandomGenerator(seed: s).derived(stream: UInt64(epoch))
            order = rng.permutation(labels.count)
        }
        var b = start
        let count = batchCount
        return AnyIterator {
            guard b < count else { return nil }
            let idx = Array(order[(b * self.batchSize)..<min(order.count, (b + 1) * self.batchSize)])
            b += 1
            let x = noGrad { self.images.indexSelect(axis: 0, indices: idx) }
            return .success(Batch(images: x, labels: idx.map { self.labels[$0] }))
        }
    }
}
