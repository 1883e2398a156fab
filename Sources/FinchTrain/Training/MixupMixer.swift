import FinchTensor
import FinchData

/// MixUp/CutMix as the trainer's batch mixer: timm's `Mixup` with its own seeded stream, which
/// checkpoints carry so a resumed run mixes the remaining batches exactly as an unbroken one.
public final class MixupMixer: BatchMixer {
    public let mixup: Mixup
    var rng: RandomGenerator

    public init(_ mixup: Mixup, seed: UInt64) {
        self.mixup = mixup
        rng = RandomGenerator(seed: seed)
    }

    /// From the config's `mixup` section; smoothing moves into the soft targets as in timm's train.py.
    public convenience init(config m: TrainConfig.Mixup, numClasses: Int, seed: UInt64) {
        let minmax = m.cutmixMinMax.map { ($0[0], $0[1]) }
        self.init(Mixup(mixupAlpha: m.mixupAlpha, cutmixAlpha: m.cutmixAlpha, cutmixMinMax: minmax, prob: m.prob,
                        switchProb: m.switchProb, mode: m.mode, correctLam: m.correctLam,
                        labelSmoothing: m.labelSmoothing, numClasses: numClasses), seed: seed)
    }

    public func mix(_ batch: Batch, numClasses: Int) -> (images: Tensor, targets: Tensor) {
        ensure(numClasses == mixup.numClasses, "MixupMixer: built for \(mixup.numClasses) classes, asked for \(numClasses)")
        return noGrad { mixup(images: batch.images, labels: batch.labels, using: &rng) }
    }

    /// One draw for both views: the teacher's batch gets the student's permutation and λ, and the
    /// student's CutMix boxes scaled to its size (`Mixup.scaled`).
    public func mixViews(_ batch: Batch, numClasses: Int) -> (images: Tensor, targets: Tensor, teacherImages: Tensor?) {
        guard let t = batch.teacherImages else {
            let (images, targets) = mix(batch, numClasses: numClasses)
            return (images, targets, nil)
        }
        ensure(numClasses == mixup.numClasses, "MixupMixer: built for \(mixup.numClasses) classes, asked for \(numClasses)")
        let x = batch.images
        let draws = mixup.draw(batchSize: batch.labels.count, height: x.shape[2], width: x.shape[3], using: &rng)
        return noGrad {
            let (images, targets) = mixup.apply(draws, images: x, labels: batch.labels)
            return (images, targets, mixup.applyScaled(draws, from: (x.shape[2], x.shape[3]), images: t))
        }
    }

    public var randomState: [UInt64] { rng.state }

    public func restoreRandomState(_ state: [UInt64]) throws {
        rng = try RandomGenerator(state: state)
    }
}
