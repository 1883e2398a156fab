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

    public func indices(count: Int, epoch: Int, seed: UInt64) throws -> [Int] {
        var rng = RandomGenerator(seed: seed).derived(stream: 0x5A3D_0000 + UInt64(epoch))
        switch self {
        case .sequential: return Array(0..<count)
        case .random: return rng.permutation(count)
        case .weighted(let w, let n, let replacement): return try rng.multinomial(weights: w, count: n, replacement: replacement)
        }
    }
}
