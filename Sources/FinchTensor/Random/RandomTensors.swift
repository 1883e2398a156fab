// Tensors filled from a `RandomGenerator`: the only source of randomness in Finch, so a seed
// reproduces a run.

extension Tensor {
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                               using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        rng.fillUniform(UnsafeMutableBufferPointer(start: t.basePointer, count: t.count), low: low, high: high)
        return t
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                              using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        rng.fillNormal(UnsafeMutableBufferPointer(start: t.basePointer, count: t.count), mean: mean, std: std)
        return t
    }

    /// 1 with probability `p`, else 0.
    public static func bernoulli(_ shape: [Int], probability p: Float,
                                 using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        rng.fillBernoulli(UnsafeMutableBufferPointer(start: t.basePointer, count: t.count), probability: p)
        return t
    }
}

/// Inverted dropout as `torch.nn.functional.dropout`: zeroes each element with probability `p`
/// and scales the rest by 1/(1−p), so evaluation needs no rescaling. Identity when not training.
public func dropout(_ x: Tensor, p: Float, training: Bool, using rng: inout RandomGenerator) -> Tensor {
    ensure(p >= 0 && p <= 1, "dropout: probability \(p) is not in [0, 1]")
    guard training && p > 0 else { return x }
    if p == 1 { return x * Tensor(zeros: x.shape) }
    let mask = Tensor.bernoulli(x.shape, probability: 1 - p, using: &rng)
    let scale = 1 / (1 - p)
    let maskPointer = mask.basePointer
    for i in 0..<mask.count { maskPointer[i] *= scale }
    return x * mask
}

/// `dropout` with the mask drawn through `source`, which in a data-parallel run draws the global
/// batch's mask and keeps this process's rows (`RandomSource.batchShare`).
public func dropout(_ x: Tensor, p: Float, training: Bool, using source: RandomSource) -> Tensor {
    ensure(p >= 0 && p <= 1, "dropout: probability \(p) is not in [0, 1]")
    guard training && p > 0 else { return x }
    if p == 1 { return x * Tensor(zeros: x.shape) }
    let mask = source.bernoulliMask(x.shape, probability: 1 - p)
    let scale = 1 / (1 - p)
    let maskPointer = mask.basePointer
    for i in 0..<mask.count { maskPointer[i] *= scale }
    return x * mask
}
