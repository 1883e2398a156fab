import FinchTensor

/// Order of sample indices for an epoch, reproducible from (seed, epoch).
public enum Sampler: Sendable, Equatable {
    case sequential
    case random
    /// `torch.utils.data.WeightedRandomSampler`: per-sample weights, `numSamples` draws.
    case weighted(weights: [Double], numSamples: Int, replacement: Bool)

    /// Weight 1 / (size of the sample's class): equal expected frequency for every class.
    public static func classBalancedWeights(labels: [Int]) -> [Double] {
        var counts: [Int: Int] = [:]
        for l in labels { counts[l, default: 0] += 1 }
        return labels.map { 1 / Double(counts[$0]!) }
    }

    /// Most draws per epoch of the weighted sampler (8 bytes of index each).
    public static let maxNumSamples = 100_000_000

    /// Checks `num_samples` and the weights against a dataset of `count` samples, naming the
    /// parameters as torch's WeightedRandomSampler does. `indices` calls it first.
    public func validate(count: Int) throws {
        guard case .weighted(let w, let n, let replacement) = self else { return }
        func fail(_ p: String, _ v: String, _ why: String) -> DataParameterError { DataParameterError(parameter: p, value: v, reason: why) }
        guard (1...Self.maxNumSamples).contains(n) else { throw fail("num_samples", "\(n)", "must be between 1 and \(Self.maxNumSamples)") }
        guard w.count == count else { throw fail("weights", "\(w.count) weights", "the dataset has \(count) samples") }
        var sum = 0.0, positive = 0
        for (i, x) in w.enumerated() {
            guard x.isFinite, x >= 0 else { throw fail("weights[\(i)]", "\(x)", "a weight must be finite and ≥ 0") }
            sum += x
            if x > 0 { positive += 1 }
        }
        guard sum > 0, sum.isFinite else { throw fail("weights", "sum \(sum)", "the sum must be finite and > 0") }
        if !replacement && n > positive {
            throw fail("num_samples", "\(n)", "more than the \(positive) samples of positive weight (replacement is false)")
        }
    }

    public func indices(count: Int, epoch: Int, seed: UInt64) throws -> [Int] {
        try validate(count: count)
        var rng = RandomGenerator(seed: seed).derived(stream: 0x5A3D_0000 + UInt64(epoch))
        switch self {
        case .sequential: return Array(0..<count)
        case .random: return rng.permutation(count)
        case .weighted(let w, let n, let replacement): return try rng.multinomial(weights: w, count: n, replacement: replacement)
        }
    }
}
