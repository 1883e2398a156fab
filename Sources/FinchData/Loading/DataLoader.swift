import Foundation
import Dispatch
import Synchronization
import FinchTensor

/// Batches of decoded, augmented, normalised images [N,3,S,S] with labels. Each draw's
/// augmentation uses its own stream derived from (seed, epoch, position in the epoch), so a
/// batch is the same whatever the thread count. The next batch is prepared on a background
/// queue while the current one trains.
public final class DataLoader: @unchecked Sendable {
    public let samples: [(url: URL, label: Int)]
    public let transform: ImageTransform
    public let batchSize: Int
    public let dropLast: Bool
    public let sampler: Sampler
    public let seed: UInt64
    public let skipBadImages: Bool
    /// Threads decoding and augmenting a batch, each taking the next image as it finishes one
    /// (photos decode at uneven cost); 0 decodes on the caller's thread with no prefetch.
    /// Results do not depend on it: every image draws from its own stream.
    public var workers: Int = 2
    /// Budgets for each image decoded (pixels, file size, JPEG scans); a config's
    /// `data.max_image_pixels` belongs here.
    public var imageLimits: ImageLimits = .standard
    /// The part of every batch this process loads (data-parallel runs); `.whole` by default.
    public var shard: Shard = .whole
    /// A second rendering of every training draw (a distillation teacher at its own size and
    /// normalisation, `distill.teacher.view: own`): the same decoded photo through this transform
    /// with a copy of the draw's stream, so crop box (in source pixels), flip, filter, jitter and
    /// RandAugment are the same draws; only the size and mean/std differ. Nil loads one view.
    public var secondView: ImageTransform?
    private let lock = NSLock()
    private var skipped: [String] = []

    public init(samples: [(url: URL, label: Int)], transform: ImageTransform, batchSize: Int, sampler: Sampler,
                dropLast: Bool, seed: UInt64, skipBadImages: Bool = false) {
        ensure(batchSize > 0, "DataLoader: batch size must be positive")
        self.samples = samples
        self.transform = transform
        self.batchSize = batchSize
        self.sampler = sampler
        self.dropLast = dropLast
        self.seed = seed
        self.skipBadImages = skipBadImages
    }

    public var samplesPerEpoch: Int {
        if case .weighted(_, let n, _) = sampler { return n }
        return samples.count
    }

    public var batchCount: Int {
        dropLast ? samplesPerEpoch / batchSize : (samplesPerEpoch + batchSize - 1) / batchSize
    }

    /// Files skipped in the current epoch (policy skip).
    public var skippedFiles: [String] { lock.lock(); defer { lock.unlock() }; return skipped }

    /// Builds batch `b` of `epoch` from the epoch's order.
    public func batch(_ b: Int, of order: [Int], epoch: Int) throws -> (images: Tensor, labels: [Int]) {
        let v = try views(b, of: order, epoch: epoch)
        return (v.images, v.labels)
    }

    /// Batch `b` with its second view (`secondView`), which is nil when none is set.
    public func views(_ b: Int, of order: [Int], epoch: Int) throws -> LoadedViews {
        // A handful of comparisons; the transform's settable fields may have changed since batches().
        try transform.validate()
        try secondView?.validate()
        let limits = imageLimits
        // Public, so its arguments are checked rather than trusted to come from batches().
        guard b >= 0, b < (order.count + batchSize - 1) / batchSize else {
            throw DataParameterError(parameter: "batch index", value: "\(b)", reason: "the epoch's order of \(order.count) has \((order.count + batchSize - 1) / batchSize) batches")
        }
        let whole = (b * batchSize)..<min(order.count, (b + 1) * batchSize)
        let part = shard.range(in: whole.count)
        let idx = Array(order[(whole.lowerBound + part.lowerBound)..<(whole.lowerBound + part.upperBound)])
        if let bad = idx.first(where: { !samples.indices.contains($0) }) {
            throw DataParameterError(parameter: "sample index", value: "\(bad)", reason: "the loader has \(samples.count) samples")
        }
        let s = transform.size
        let images = Tensor(uninitializedShape: [idx.count, 3, s, s])
        let base = images.basePointer
        let second = secondView, s2 = second?.size ?? 0
        let secondImages = second.map { _ in Tensor(uninitializedShape: [idx.count, 3, s2, s2]) }
        let secondBase = secondImages?.basePointer
        // One decode serves both views; the larger request keeps the DCT-scaled decode at least 2×
        // above what either view samples from it.
        let decodeSide = max(transform.decodeShortSide, second?.decodeShortSide ?? 0)
        var errors = [Error?](repeating: nil, count: idx.count)
        var ok = [Bool](repeating: true, count: idx.count)
        let threads = max(1, min(workers, idx.count))
        let next = Atomic<Int>(0)
        errors.withUnsafeMutableBufferPointer { errs in
            ok.withUnsafeMutableBufferPointer { oks in
                func work(_: Int) {
                    while true {
                        let k = next.add(1, ordering: .relaxed).oldValue
                        guard k < idx.count else { return }
                        let sampleIndex = idx[k]
                        // Keyed by the draw's position in the epoch, not by which image it is: a sampler
                        // with replacement may draw one image several times, and each draw needs its own
                        // crop and jitter (as each __getitem__ call gets in PyTorch).
                        var rng = RandomGenerator(seed: self.seed).derived(stream: UInt64(epoch) << 32 | UInt64(b * self.batchSize + part.lowerBound + k))
                        do {
                            let im = try ImageDecoder.decode(contentsOf: self.samples[sampleIndex].url, targetShortSide: decodeSide,
                                                          limits: limits)
                            var secondRNG = rng
                            self.transform.apply(im, rng: &rng, into: base + k * 3 * s * s)
                            if let second, let secondBase { second.apply(im, rng: &secondRNG, into: secondBase + k * 3 * s2 * s2) }
                        } catch {
                            errs[k] = error
                            oks[k] = false
                        }
                    }
                }
                if threads == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: work) }
            }
        }
        if let e = errors.compactMap({ $0 }).first, !skipBadImages { throw e }
        let keep = (0..<idx.count).filter { ok[$0] }
        for k in (0..<idx.count) where !ok[k] {
            lock.lock(); skipped.append(samples[idx[k]].url.path); lock.unlock()
            DataLog.logger.warning("skipping unreadable image: \(errors[k]!)")
        }
        let labels = keep.map { samples[idx[$0]].label }
        if keep.count == idx.count { return LoadedViews(images: images, labels: labels, secondImages: secondImages) }
        return noGrad { LoadedViews(images: images.indexSelect(axis: 0, indices: keep), labels: labels,
                                    secondImages: secondImages?.indexSelect(axis: 0, indices: keep)) }
    }

    /// The epoch's batches from `start`, one prepared ahead on a background queue.
    public func batches(epoch: Int, startingAt start: Int = 0) throws -> AnyIterator<Result<(images: Tensor, labels: [Int]), Error>> {
        let it = try viewBatches(epoch: epoch, startingAt: start)
        return AnyIterator { it.next().map { r in r.map { ($0.images, $0.labels) } } }
    }

    /// `batches` with each batch's second view (`secondView`).
    public func viewBatches(epoch: Int, startingAt start: Int = 0) throws -> AnyIterator<Result<LoadedViews, Error>> {
        lock.lock(); skipped = []; lock.unlock()
        try transform.validate()
        let order = try sampler.indices(count: samples.count, epoch: epoch, seed: seed)
        let count = batchCount
        let queue = DispatchQueue(label: "finch.loader")
        var next = start
        var pending: (DispatchGroup, Box)? = nil
        final class Box: @unchecked Sendable { var value: Result<LoadedViews, Error>? }
        func launch(_ b: Int) -> (DispatchGroup, Box) {
            let g = DispatchGroup(), box = Box()
            queue.async(group: g) { box.value = Result { try self.views(b, of: order, epoch: epoch) } }
            return (g, box)
        }
        if workers == 0 {
            return AnyIterator {
                guard next < count else { return nil }
                defer { next += 1 }
                return Result { try self.views(next, of: order, epoch: epoch) }
            }
        }
        return AnyIterator {
            guard next < count else { return nil }
            let (g, box) = pending ?? launch(next)
            g.wait()
            next += 1
            pending = next < count ? launch(next) : nil
            return box.value
        }
    }
}

/// A loaded batch: the images [N,3,S,S] and labels, and the same draws rendered by the loader's
/// `secondView` [N,3,S₂,S₂] when it has one.
public struct LoadedViews: @unchecked Sendable {
    public let images: Tensor
    public let labels: [Int]
    public let secondImages: Tensor?
}
