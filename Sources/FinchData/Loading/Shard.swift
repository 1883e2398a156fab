/// One process's share of each batch in a data-parallel run: batch `b` is drawn exactly as in a
/// single process, then split into `count` contiguous parts whose sizes differ by at most one, so
/// the images seen per epoch, and each draw's augmentation stream, do not depend on the count.
public struct Shard: Sendable, Equatable {
    public let index: Int
    public let count: Int

    /// The whole batch (a single process).
    public static let whole = Shard(uncheckedIndex: 0, count: 1)

    private init(uncheckedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw DataParameterError(parameter: "shard count", value: "\(count)", reason: "must be at least 1") }
        guard (0..<count).contains(index) else {
            throw DataParameterError(parameter: "shard index", value: "\(index)", reason: "must be in 0..<\(count)")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    /// This share's positions within a batch of `n` (the first `n % count` shares take one more).
    public func range(in n: Int) -> Range<Int> {
        let base = n / count, extra = n % count
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }
}
