// Seeded random numbers for Finch: xoshiro256** (Blackman & Vigna, 2018) seeded through
// SplitMix64 (Steele, Lea & Flood, 2014), plus the samplers training needs.
//
// Reproducibility contract: the raw stream (`next()`) and every sampler built only from it
// with integer or exactly-rounded arithmetic (nextFloat, nextDouble, uniform, nextInt,
// bernoulli, permutation, shuffle, multinomial with replacement, the fills except
// fillNormal) give bit-identical results on every machine. Samplers that call `log`/`pow`
// (normal, gamma, beta, multinomial without replacement, fillNormal) are bit-identical
// given the same libm; across libms they may differ in the last ulp and, through
// rejection steps, occasionally in later draws.
//
// Samplers are hand-written rather than using the standard library's `random(in:using:)`
// or `shuffle(using:)`, because the standard library does not promise that those
// algorithms stay the same across Swift releases.

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Errors from restoring generator state or from validating sampler inputs.
public enum RandomGeneratorError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidState(String)
    case invalidWeights(String)

    public var description: String {
        switch self {
        case .invalidState(let why): return "invalid RandomGenerator state: \(why)"
        case .invalidWeights(let why): return "invalid multinomial weights: \(why)"
        }
    }
}

/// SplitMix64: used to expand a 64-bit seed into xoshiro state and to hash stream ids,
/// because its output function is a bijection with full avalanche, so nearby seeds
/// (0, 1, 2, ...) give unrelated states and no seed can produce the forbidden all-zero state.
struct SplitMix64 {
    static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15
    var counter: UInt64

    init(seed: UInt64) { counter = seed }

    mutating func next() -> UInt64 {
        counter &+= SplitMix64.gamma
        return SplitMix64.mix(counter)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Seeded xoshiro256** generator with the samplers Finch needs.
///
/// A value type: copying a generator forks an identical stream, so pass it `inout`
/// where draws must advance the caller's stream.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    /// The key that `derived(stream:)` hashes. It is fixed at creation (draws and `jump()`
    /// don't change it), so derived streams don't depend on how far this one has advanced.
    /// For a derived generator it is the derived key, so `RandomGenerator(seed: g.seed)`
    /// reproduces `g` as it was when created.
    public let seed: UInt64

    /// Number of words in `state`.
    public static let stateWordCount = 5

    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
        self.seed = seed
    }

    /// Everything needed to continue this exact stream: the four xoshiro words, then `seed`.
    public var state: [UInt64] { [s0, s1, s2, s3, seed] }

    /// Restores a generator saved with `state`; the restored generator continues the exact
    /// sequence and derives the same streams.
    public init(state: [UInt64]) throws(RandomGeneratorError) {
        guard state.count == RandomGenerator.stateWordCount else {
            throw .invalidState("expected \(RandomGenerator.stateWordCount) words "
                + "(4 xoshiro256** words + seed), got \(state.count)")
        }
        guard state[0] | state[1] | state[2] | state[3] != 0 else {
            throw .invalidState("xoshiro256** words are all zero; that state only ever outputs zero")
        }
        s0 = state[0]
        s1 = state[1]
        s2 = state[2]
        s3 = state[3]
        seed = state[4]
    }

    /// An independent generator for `stream` (e.g. a data-loader worker or an epoch).
    /// Depends only on (`seed`, `stream`): the same pair always yields the same generator,
    /// and for a given seed distinct streams always get distinct keys.
    public func derived(stream: UInt64) -> RandomGenerator {
        // Domain-separation constant (SHA-512 IV word) so a derived key is not simply
        // one of the SplitMix64 outputs that seeded this generator.
        let h = SplitMix64.mix(seed ^ 0x6A09_E667_F3BC_C909)
        // gamma is odd, so stream ↦ key is injective for a fixed seed.
        return RandomGenerator(seed: SplitMix64.mix(h &+ stream &* SplitMix64.gamma))
    }

    /// Advances the stream by 2^128 draws, giving a provably non-overlapping subsequence.
    /// Leaves `seed` unchanged.
    public mutating func jump() {
        // Published xoshiro256 jump polynomial (checked here against T^(2^128) computed
        // by GF(2) matrix powering).
        let poly: [UInt64] = [0x180E_C6D3_3CFD_0ABA, 0xD5A6_1266_F0C9_392C,
                              0xA958_2618_E03F_C9AA, 0x39AB_DC45_29B1_661C]
        var a0: UInt64 = 0, a1: UInt64 = 0, a2: UInt64 = 0, a3: UInt64 = 0
        for word in poly {
            for bit in 0..<64 {
                if word & (1 << UInt64(bit)) != 0 {
                    a0 ^= s0; a1 ^= s1; a2 ^= s2; a3 ^= s3
                }
                _ = next()
            }
        }
        s0 = a0; s1 = a1; s2 = a2; s3 = a3
    }

    // MARK: Raw stream

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    // MARK: Uniform

    /// Maps the top 24 bits to [0, 1); every result is an exact multiple of 2^-24, so the
    /// conversion is exact and can never round up to 1.
    @inlinable
    static func unitFloat(_ bits: UInt64) -> Float { Float(bits >> 40) * 0x1p-24 }

    /// Maps the top 53 bits to [0, 1), exactly.
    @inlinable
    static func unitDouble(_ bits: UInt64) -> Double { Double(bits >> 11) * 0x1p-53 }

    /// Maps the top 52 bits to the open interval (0, 1), for samplers that take a log.
    /// 52 rather than 53 bits: (2^53 - 1 + 0.5) is not representable and rounds up to 2^53,
    /// which would make the top value exactly 1.
    @inlinable
    static func openUnitDouble(_ bits: UInt64) -> Double { (Double(bits >> 12) + 0.5) * 0x1p-52 }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public mutating func nextFloat() -> Float { RandomGenerator.unitFloat(next()) }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextDouble() -> Double { RandomGenerator.unitDouble(next()) }

    /// `low + (high - low) * u` can round up to `high` (e.g. low 1, high 2, u = 1 - 2^-24),
    /// so clamp to keep the interval half-open.
    @inlinable
    static func scaleUniform(_ u: Float, _ low: Float, _ high: Float) -> Float {
        let r = low + (high - low) * u
        return r < high ? r : Swift.max(low, high.nextDown)
    }

    /// Uniform in [low, high); returns `low` when low == high.
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        ensure(low <= high, "uniform: low (\(low)) must not exceed high (\(high))")
        return RandomGenerator.scaleUniform(nextFloat(), low, high)
    }

    /// Uniform integer in 0..<n, unbiased (Lemire 2019, multiply-shift with rejection).
    @inlinable
    public mutating func nextInt(below n: Int) -> Int {
        ensure(n > 0, "nextInt(below:) needs n > 0, got \(n)")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            // Rejecting the 2^64 mod n lowest products makes every output equally likely.
            let threshold = (0 &- bound) % bound
            while m.low < threshold {
                m = next().multipliedFullWidth(by: bound)
            }
        }
        return Int(m.high)
    }

    // MARK: Bernoulli

    /// True with probability `p`. Always consumes exactly one draw, so the stream position
    /// after a call does not depend on `p`.
    public mutating func bernoulli(_ p: Double) -> Bool {
        ensure(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got \(p)")
        return nextDouble() < p
    }

    // MARK: Normal

    /// Marsaglia polar method: avoids sin/cos (only log and sqrt), which keeps the libm
    /// surface small for reproducibility. Returns both variates of the pair.
    mutating func standardNormalPair() -> (Double, Double) {
        while true {
            let u = 2 * nextDouble() - 1
            let v = 2 * nextDouble() - 1
            let s = u * u + v * v
            if s < 1 && s > 0 {
                let f = (-2 * log(s) / s).squareRoot()
                return (u * f, v * f)
            }
        }
    }

    /// Normal(mean, std²). The pair's second variate is discarded rather than cached so that
    /// `state` fully describes the generator.
    public mutating func normal(mean: Double = 0, std: Double = 1) -> Double {
        ensure(std >= 0, "normal: std must be non-negative, got \(std)")
        return mean + std * standardNormalPair().0
    }

    // MARK: Gamma / Beta

    /// Marsaglia & Tsang (2000) for shape >= 1.
    mutating func marsagliaTsang(_ shape: Double) -> Double {
        let d = shape - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = standardNormalPair().0
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextDouble()
            let x2 = x * x
            if u < 1 - 0.0331 * x2 * x2 { return d * v }
            if log(u) < 0.5 * x2 + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// Gamma(shape, scale), mean shape·scale. For shape < 1 uses the standard boost
    /// Gamma(a) = Gamma(a + 1) · U^(1/a). Tiny shapes can underflow to 0, which is the
    /// correctly rounded value; use `beta` for ratios of gammas.
    public mutating func gamma(shape: Double, scale: Double = 1) -> Double {
        ensure(shape > 0 && shape.isFinite, "gamma: shape must be positive and finite, got \(shape)")
        ensure(scale > 0 && scale.isFinite, "gamma: scale must be positive and finite, got \(scale)")
        if shape >= 1 { return scale * marsagliaTsang(shape) }
        let g = marsagliaTsang(shape + 1)
        let u = RandomGenerator.openUnitDouble(next())
        return scale * g * pow(u, 1 / shape)
    }

    /// log of a Gamma(shape, 1) variate; consumes the same draws as `gamma(shape:)`.
    /// Working in logs keeps small shapes (MixUp alpha 0.1 or less) from underflowing.
    mutating func logGamma(shape: Double) -> Double {
        if shape >= 1 { return log(marsagliaTsang(shape)) }
        let g = marsagliaTsang(shape + 1)
        let u = RandomGenerator.openUnitDouble(next())
        return log(g) + log(u) / shape
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). Computed as
    /// 1 / (1 + exp(log Y - log X)) so that both gammas underflowing (small a, b) cannot give
    /// 0/0: the result is always in [0, 1] and never NaN.
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        ensure(a > 0 && a.isFinite, "beta: a must be positive and finite, got \(a)")
        ensure(b > 0 && b.isFinite, "beta: b must be positive and finite, got \(b)")
        let lx = logGamma(shape: a)
        let ly = logGamma(shape: b)
        return 1 / (1 + exp(ly - lx))
    }

    // MARK: Permutations

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        ensure(n >= 0, "permutation: n must be non-negative, got \(n)")
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// Shuffles in place, uniformly (Durstenfeld's Fisher–Yates, from the end).
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ c: inout C) {
        var i = c.count - 1
        while i > 0 {
            let j = nextInt(below: i + 1)
            if j != i {
                c.swapAt(c.index(c.startIndex, offsetBy: i), c.index(c.startIndex, offsetBy: j))
            }
            i -= 1
        }
    }

    // MARK: Multinomial

    /// Draws `count` indices with probability proportional to `weights`, with the semantics
    /// of torch.multinomial / WeightedRandomSampler: weights must be finite, non-negative,
    /// not all zero, and need not sum to 1. Without replacement, each draw removes the chosen
    /// index, so `count` may not exceed the number of positive weights; the result is in
    /// draw order. Zero-weight indices are never drawn.
    ///
    /// Draws consumed: `count` with replacement; one per positive weight without.
    public mutating func multinomial(weights: [Double], count: Int,
                                     replacement: Bool) throws(RandomGeneratorError) -> [Int] {
        guard !weights.isEmpty else { throw .invalidWeights("weights is empty") }
        guard count >= 0 else { throw .invalidWeights("count must be non-negative, got \(count)") }
        var positive = 0
        for (i, w) in weights.enumerated() {
            if w.isNaN { throw .invalidWeights("weights[\(i)] is NaN") }
            if w.isInfinite { throw .invalidWeights("weights[\(i)] is infinite") }
            if w < 0 { throw .invalidWeights("weights[\(i)] is negative (\(w))") }
            if w > 0 { positive += 1 }
        }
        guard positive > 0 else {
            throw .invalidWeights("all \(weights.count) weights are zero")
        }
        if !replacement && count > positive {
            throw .invalidWeights("count \(count) exceeds the \(positive) positive weights "
                + "available without replacement")
        }
        if count == 0 { return [] }
        return replacement
            ? multinomialWithReplacement(weights, count)
            : multinomialWithoutReplacement(weights, count)
    }

    private mutating func multinomialWithReplacement(_ weights: [Double], _ count: Int) -> [Int] {
        var cdf = [Double](repeating: 0, count: weights.count)
        var total = 0.0
        var lastPositive = 0
        for (i, w) in weights.enumerated() {
            total += w
            cdf[i] = total
            if w > 0 { lastPositive = i }
        }
        var out = [Int]()
        out.reserveCapacity(count)
        for _ in 0..<count {
            let u = nextDouble() * total
            // First index whose cumulative weight exceeds u; a zero weight repeats the previous
            // cumulative value, so it can never be first.
            var lo = 0, hi = cdf.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if cdf[mid] > u { hi = mid } else { lo = mid + 1 }
            }
            // u < total holds in exact arithmetic; guard rounding anyway.
            out.append(lo < cdf.count ? lo : lastPositive)
        }
        return out
    }

    /// Exponential race (Efraimidis & Spirakis 2006): give index i the arrival time E_i / w_i
    /// with E_i ~ Exp(1); the arrival order has exactly the law of successive draws that each
    /// remove the chosen index, by memorylessness. Unlike repeatedly subtracting from a running
    /// total, this has no rounding drift that could let a removed index be drawn again, and it
    /// is O(n log n). Times are compared in logs so tiny weights don't overflow to infinity.
    private mutating func multinomialWithoutReplacement(_ weights: [Double], _ count: Int) -> [Int] {
        var keys: [(logTime: Double, index: Int)] = []
        keys.reserveCapacity(weights.count)
        for (i, w) in weights.enumerated() where w > 0 {
            let e = -log(RandomGenerator.openUnitDouble(next()))
            keys.append((log(e) - log(w), i))
        }
        keys.sort { $0.logTime != $1.logTime ? $0.logTime < $1.logTime : $0.index < $1.index }
        return keys.prefix(count).map(\.index)
    }

    // MARK: Bulk fills

    // The fills work on a local copy so the optimizer can keep the four state words in
    // registers, then store it back once.

    /// Fills with uniform values in [low, high); element i equals the i-th `uniform(low, high)`.
    public mutating func fillUniform(_ p: UnsafeMutableBufferPointer<Float>, low: Float, high: Float) {
        ensure(low <= high, "fillUniform: low (\(low)) must not exceed high (\(high))")
        var g = self
        for i in p.indices {
            p[i] = RandomGenerator.scaleUniform(g.nextFloat(), low, high)
        }
        self = g
    }

    /// Fills with Normal(mean, std²) values, using both variates of each polar pair (so the
    /// values differ from repeated `normal()` calls); an odd tail discards one variate.
    public mutating func fillNormal(_ p: UnsafeMutableBufferPointer<Float>, mean: Float, std: Float) {
        ensure(std >= 0, "fillNormal: std must be non-negative, got \(std)")
        var g = self
        let m = Double(mean), s = Double(std)
        var i = 0
        let n = p.count
        while i < n {
            let (z0, z1) = g.standardNormalPair()
            p[i] = Float(m + s * z0)
            if i + 1 < n { p[i + 1] = Float(m + s * z1) }
            i += 2
        }
        self = g
    }

    /// Fills with 1 (probability `probability`) or 0; element i equals the i-th
    /// `bernoulli(Double(probability))`.
    public mutating func fillBernoulli(_ p: UnsafeMutableBufferPointer<Float>, probability: Float) {
        ensure(probability >= 0 && probability <= 1,
                     "fillBernoulli: probability must be in [0, 1], got \(probability)")
        var g = self
        let q = Double(probability)
        for i in p.indices {
            p[i] = g.nextDouble() < q ? 1 : 0
        }
        self = g
    }
}
