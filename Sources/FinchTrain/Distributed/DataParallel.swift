import Foundation
import FinchTensor
import FinchNN

/// A trainer's part in a data-parallel run: each rank trains on its share of every global batch
/// (`Shard`), and every step the ranks agree on the batch size, the loss and whether to stop,
/// then sum their weighted gradients so each applies the same optimizer step to the same weights.
///
/// Weights: rank r's loss is the mean over its n_r samples, so it is scaled by n_r / Σn before
/// backward; the summed gradient is then the gradient of the mean over the global batch, as in one
/// process, also for an uneven last batch or skipped images.
public final class DataParallel {
    public let communicator: Communicator
    /// Floats per allreduce call (`distributed.bucket_mb`).
    public let bucketElements: Int
    public let distBN: DistributedBatchNorm
    /// Training BatchNorm with the global batch's statistics (`distributed.sync_bn`).
    public let syncBN: Bool
    /// Gradients reduced while backward runs (`distributed.overlap`), when MPI's thread level
    /// allows it on the training thread; otherwise after backward.
    public let overlap: Bool
    /// Seconds spent summing gradients (from the first reduction's start to the last one's end),
    /// the part of it after backward ended (all of it without overlap), and the number of
    /// reductions (for throughput reports).
    public private(set) var allreduceSeconds: Double = 0
    public private(set) var exposedSeconds: Double = 0
    public private(set) var reductions = 0
    /// Set when the ranks agreed to stop (a signal reached at least one of them).
    public private(set) var stopAgreed = false
    private var bucket: [Float]
    private let buckets: GradientBuckets?
    /// Set by an overlapped backward: the optimizer step's reduction is already done.
    private var reducedInBackward = false

    /// `overlap` needs nonblocking collectives on the calling thread (the one that initialised MPI);
    /// make the `DataParallel` there, as every rank must (duplicating the communicator is a collective).
    public init(communicator: Communicator, bucketMB: Double, distBN: DistributedBatchNorm = .reduce, syncBN: Bool = true,
                overlap: Bool = true) {
        self.communicator = communicator
        self.syncBN = syncBN
        bucketElements = max(1, Int(bucketMB * 1_048_576 / 4))
        self.distBN = distBN
        bucket = []
        self.overlap = overlap && communicator.canOverlapOnCurrentThread
        buckets = self.overlap ? GradientBuckets(communicator: communicator.duplicate(), capacity: bucketElements) : nil
    }

    /// Backward from `loss`; when the optimizer steps next (`stepsNext`) and `overlap` is on, the
    /// gradients of `params` (the trained ones, in registration order) are summed over the ranks
    /// as backward finishes them, so the step's `reduceGradients` has nothing left to do.
    public func backward(_ loss: Tensor, params: [Tensor], stepsNext: Bool) {
        guard stepsNext, let buckets, communicator.canOverlapOnCurrentThread else { return loss.backward() }
        buckets.begin(params)
        loss.backward(hooks: BackwardHooks(gradientFinal: { buckets.gradientFinal($0) }, afterNode: { buckets.progress() }))
        let backwardEnd = Date()
        var present = params.map { $0.grad == nil ? 0.0 : 1.0 }
        communicator.allreduceMax(&present)
        let t = buckets.finish(params, present: present.map { $0 > 0 }, backwardEnd: backwardEnd)
        allreduceSeconds += t.total
        exposedSeconds += t.exposed
        reductions += 1
        reducedInBackward = true
    }

    /// The step's collective bookkeeping: the local loss's weight n_r / Σn, the global batch's
    /// mean loss (NaN on every rank when any rank's loss is not finite), and whether any rank was
    /// asked to stop.
    func exchangeStep(localCount: Int, localLoss: Float, stopRequested: Bool) -> (weight: Float, loss: Float) {
        var v = [Double(localCount), Double(localCount) * Double(localLoss), stopRequested ? 1 : 0]
        communicator.allreduceSum(&v)
        if v[2] > 0 { agreeToStop() }
        let total = max(v[0], 1)
        return (Float(Double(localCount) / total), Float(v[1] / total))
    }

    /// The epoch's time in gradient reduction (`dist/allreduce_ms_per_step`) and the part of it
    /// not hidden behind backward (`dist/allreduce_exposed_ms_per_step`), then counting anew.
    func takeEpochFigures() -> [String: Double] {
        defer { (allreduceSeconds, exposedSeconds, reductions) = (0, 0, 0) }
        guard reductions > 0 else { return [:] }
        return ["dist/allreduce_ms_per_step": 1000 * allreduceSeconds / Double(reductions),
                "dist/allreduce_exposed_ms_per_step": 1000 * exposedSeconds / Double(reductions)]
    }

    /// Every rank then stops as if it had received the signal itself (the command writes last.h5 on rank 0).
    private func agreeToStop() {
        stopAgreed = true
        Trainer.stopRequest.store(true, ordering: .relaxed)
    }

    /// Whether any rank was asked to stop (a collective: every rank calls it at the same point).
    func agreeOnStop(_ local: Bool) -> Bool {
        var v = [local ? 1.0 : 0]
        communicator.allreduceMax(&v)
        if v[0] > 0 { agreeToStop() }
        return stopAgreed
    }

    /// Sums the gradients of `params` over the ranks, packed into buckets of `bucketElements`
    /// floats (one MPI call per bucket, not per tensor). A parameter without a gradient on every
    /// rank keeps none; one with a gradient on some rank gets the sum (zeros elsewhere).
    public func reduceGradients(_ params: [Tensor]) {
        if reducedInBackward {
            reducedInBackward = false
            return
        }
        let start = Date()
        defer {
            let t = Date().timeIntervalSince(start)
            (allreduceSeconds, exposedSeconds, reductions) = (allreduceSeconds + t, exposedSeconds + t, reductions + 1)
        }
        var present = params.map { $0.grad == nil ? 0.0 : 1.0 }
        communicator.allreduceMax(&present)
        let live = params.indices.filter { present[$0] > 0 }.map { params[$0] }
        if bucket.count < bucketElements { bucket = [Float](repeating: 0, count: bucketElements) }
        var pending: [Tensor] = [], used = 0
        func flush() {
            guard used > 0 else { return }
            bucket.withUnsafeMutableBufferPointer { b in
                communicator.allreduceSum(UnsafeMutableBufferPointer(rebasing: b[0..<used]))
                var at = 0
                for p in pending {
                    let g = Tensor(uninitializedShape: p.shape)
                    g.basePointer.update(from: b.baseAddress! + at, count: p.count)
                    p.grad = g
                    at += p.count
                }
            }
            pending = []
            used = 0
        }
        for p in live {
            if p.count > bucketElements {
                // Larger than a bucket: reduced on its own, in a copy (a gradient may share storage).
                let g = Tensor(uninitializedShape: p.shape)
                copyGradient(of: p, to: g.basePointer)
                communicator.allreduceSum(UnsafeMutableBufferPointer(start: g.basePointer, count: g.count))
                p.grad = g
                continue
            }
            if used + p.count > bucketElements { flush() }
            bucket.withUnsafeMutableBufferPointer { copyGradient(of: p, to: $0.baseAddress! + used) }
            pending.append(p)
            used += p.count
        }
        flush()
    }

    /// The end of an epoch's training, before evaluation: the ranks' loss and accuracy totals
    /// summed into the global ones, one set of BatchNorm statistics, and the replicas checked.
    func finishEpoch(_ trainer: Trainer, totals lossSum: inout Double, _ seen: inout Int, _ correct: inout Int,
                     _ counted: inout Int) throws {
        var v = [lossSum, Double(seen), Double(correct), Double(counted)]
        communicator.allreduceSum(&v)
        (lossSum, seen, correct, counted) = (v[0], Int(v[1]), Int(v[2]), Int(v[3]))
        synchronizeBatchNorm(trainer.model)
        try checkReplicasAgree(trainer.model, epoch: trainer.epoch)
    }

    /// The evaluation of every rank's share, as one process's evaluation of the whole set.
    func combine(_ m: ClassificationMetrics) -> ClassificationMetrics { Distributed.combine(m, over: communicator) }

    /// Tells the model's dropout and drop-path where this rank's rows sit in the global batch, so
    /// each rank keeps its rows of the masks one process draws (a collective: one per step).
    func shareRandomness(_ source: RandomSource, localCount: Int) {
        let counts = communicator.allgather(Double(localCount)).map { Int($0) }
        source.batchShare = (counts[..<communicator.rank].reduce(0, +), localCount, counts.reduce(0, +))
    }

    /// MixUp/CutMix over the global batch with the shared random stream, then this rank's rows,
    /// so the mixing does not depend on the number of ranks.
    func mix(_ batch: Batch, with mixer: BatchMixer, numClasses: Int) -> (images: Tensor, targets: Tensor, teacherImages: Tensor?) {
        let labels = batch.labels.map(Float.init)
        let allLabels = labels.withUnsafeBufferPointer { communicator.allgatherConcatenated($0) }
        let counts = communicator.allgather(Double(batch.labels.count)).map { Int($0) }
        let offset = counts[..<communicator.rank].reduce(0, +)
        func gathered(_ images: Tensor) -> Tensor {
            let all = images.withContiguousBuffer { communicator.allgatherConcatenated($0) }
            var shape = images.shape
            shape[0] = allLabels.count
            return Tensor(all, shape: shape)
        }
        // Every rank renders a teacher view or none (one config), so the gathers stay paired.
        let global = Batch(images: gathered(batch.images), labels: allLabels.map { Int($0) }, teacherImages: batch.teacherImages.map(gathered))
        let (mixed, targets, teacherMixed) = mixer.mixViews(global, numClasses: numClasses)
        let rows = Array(offset..<offset + batch.labels.count)
        return noGrad { (mixed.indexSelect(axis: 0, indices: rows), targets.indexSelect(axis: 0, indices: rows),
                         teacherMixed?.indexSelect(axis: 0, indices: rows)) }
    }

    /// Stops when the ranks' trained weights differ: every rank must apply the same step to the
    /// same weights, and an MPI library that returned different sums to different ranks would
    /// otherwise go unnoticed until the results did not reproduce.
    func checkReplicasAgree(_ model: Module, epoch: Int) throws {
        var h = FNV1a()
        for (_, p) in model.namedParameters() { p.withContiguousBuffer { h.add(UnsafeRawBufferPointer($0)) } }
        let all = communicator.allgather(Double(bitPattern: h.value))
        let differing = all.indices.filter { all[$0].bitPattern != all[0].bitPattern }
        guard differing.isEmpty else {
            throw DistributedError.replicasDiverged(epoch: epoch, ranks: differing)
        }
    }

    /// Makes the BatchNorm running statistics one set (`distributed.dist_bn`); with `sync_bn`
    /// they are one set already.
    func synchronizeBatchNorm(_ model: Module) {
        if !syncBN { distBN.synchronize(model, over: communicator) }
    }

    /// Gives every BatchNorm of `model` the ranks' sums (`sync_bn`); frozen ones never call it.
    public func attach(to model: Module) {
        guard syncBN else { return }
        let comm = communicator
        for (_, m) in model.namedModules() {
            (m as? BatchNorm2d)?.statisticsReducer = { comm.allreduceSum($0) }
        }
    }
}

public enum DistributedError: Error, CustomStringConvertible {
    /// A rank's config or dataset differs from rank 0's.
    case runMismatch(what: String, ranks: [Int])
    case replicasDiverged(epoch: Int, ranks: [Int])
    /// A setting a data-parallel run cannot honour.
    case unsupported(key: String, message: String)

    public var description: String {
        switch self {
        case .runMismatch(let what, let ranks):
            return "data-parallel run refused before the first step: the \(what) of rank\(ranks.count > 1 ? "s" : "") \(ranks.map(String.init).joined(separator: ", ")) differ\(ranks.count > 1 ? "" : "s") from rank 0's (start every rank with the same config, overrides and dataset)"
        case .replicasDiverged(let e, let ranks):
            return "data-parallel run stopped after epoch \(e + 1): the weights of rank\(ranks.count > 1 ? "s" : "") \(ranks.map(String.init).joined(separator: ", ")) differ from rank 0's"
        case .unsupported(let key, let message):
            return "'\(key)': \(message)"
        }
    }
}

/// 64-bit FNV-1a: a fingerprint to compare across ranks, not a defence against forgery.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    mutating func add(_ s: String) {
        var s = s
        s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        value = value &* 0x100_0000_01b3   // a separator: ["ab", "c"] and ["a", "bc"] differ
    }
}
