/// A shared, mutable handle on one `RandomGenerator` stream. Modules that draw randomness
/// (dropout, drop-path) hold the same source, so one seed fixes a model's masks and a
/// checkpoint can save the stream's exact position through `generator.state`.
public final class RandomSource {
    public var generator: RandomGenerator
    /// Set in a data-parallel run: this process holds rows `offset..<offset + count` of a global
    /// batch of `total` rows. Masks over the batch are then drawn for the whole global batch, as
    /// one process draws them, and this process keeps its rows, so the masks (and the stream's
    /// position) do not depend on the number of processes. nil (one process): drawn as they are.
    public var batchShare: (offset: Int, count: Int, total: Int)?

    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
    public init(_ generator: RandomGenerator) { self.generator = generator }

    /// A keep-mask (1 with probability `probability`, else 0) of `shape`, whose leading axis runs
    /// over the batch (whole samples, or k rows per sample in sample-major order, as MobileViT's
    /// patch sequences).
    public func bernoulliMask(_ shape: [Int], probability: Float) -> Tensor {
        guard let share = batchShare, !shape.isEmpty, share.count != share.total else {
            return Tensor.bernoulli(shape, probability: probability, using: &generator)
        }
        ensure(share.count > 0 && shape[0] % share.count == 0,
               "RandomSource: a mask over \(shape[0]) rows for a share of \(share.count) samples of the batch")
        let perSample = shape[0] / share.count
        var global = shape
        global[0] = share.total * perSample
        let all = Tensor.bernoulli(global, probability: probability, using: &generator)
        let rowSize = shape.dropFirst().reduce(1, *) * perSample
        let t = Tensor(uninitializedShape: shape)
        t.basePointer.update(from: all.basePointer + share.offset * rowSize, count: share.count * rowSize)
        return t
    }
}
