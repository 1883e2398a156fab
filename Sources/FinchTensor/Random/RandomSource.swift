/// A shared, mutable handle on one `RandomGenerator` stream. Modules that draw randomness
/// (dropout, drop-path) hold the same source, so one seed fixes a model's masks and a
/// checkpoint can save the stream's exact position through `generator.state`.
public final class RandomSource {
    public var generator: RandomGenerator

    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
    public init(_ generator: RandomGenerator) { self.generator = generator }
}
