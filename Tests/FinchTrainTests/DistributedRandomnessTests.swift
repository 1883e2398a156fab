import XCTest
import FinchTensor
import FinchNN

/// `RandomSource.batchShare`: the masks a rank draws are its rows of the mask one process draws
/// for the global batch, and every rank's stream ends where the one process's ends.
final class DistributedRandomnessTests: XCTestCase {
    func testSharesOfAMaskAreTheRowsOfTheGlobalMask() {
        for shares in [[5], [3, 2], [2, 2, 1]] {
            let total = shares.reduce(0, +)
            // Four rows per sample, as MobileViT's patch sequences; then one row per sample.
            for perSample in [4, 1] {
                let one = RandomSource(seed: 3)
                let whole = one.bernoulliMask([total * perSample, 3], probability: 0.5).scalars
                XCTAssertTrue(whole.contains(0) && whole.contains(1))
                var joined: [Float] = [], offset = 0
                for count in shares {
                    let rank = RandomSource(seed: 3)
                    rank.batchShare = (offset, count, total)
                    let mask = rank.bernoulliMask([count * perSample, 3], probability: 0.5)
                    XCTAssertEqual(mask.shape, [count * perSample, 3])
                    joined += mask.scalars
                    XCTAssertEqual(rank.generator.state, one.generator.state, "shares \(shares)")
                    offset += count
                }
                XCTAssertEqual(joined, whole, "shares \(shares), \(perSample) rows per sample")
            }
        }
    }

    /// A model with dropout and drop-path, BatchNorm on running statistics: each share's forward
    /// gives its rows of the global batch's forward, and the stream ends in the same place.
    func testSharesOfAForwardAreTheRowsOfTheGlobalForward() throws {
        let options = ModelOptions(numClasses: 3, dropRate: 0.3, dropPathRate: 0.2)
        var rng = RandomGenerator(seed: 5)
        let images = Tensor.normal([4, 3, 32, 32], using: &rng)
        func model() throws -> Module {
            let m = try ModelRegistry.create("mobilenetv3_small_100", options: options, seed: 1)
            m.train()
            for (_, bn) in m.namedModules() { (bn as? BatchNorm2d)?.usesRunningStatsAlways = true }
            return m
        }
        let one = try model()
        let whole = one(images).scalars
        for shares in [[2, 2], [2, 1, 1]] {
            var joined: [Float] = [], offset = 0
            for count in shares {
                let m = try model()
                m.randomSource.batchShare = (offset, count, 4)
                joined += m(images.indexSelect(axis: 0, indices: Array(offset..<offset + count))).scalars
                XCTAssertEqual(m.randomSource.generator.state, one.randomSource.generator.state)
                offset += count
            }
            XCTAssertEqual(joined.count, whole.count)
            // Relative to the logits' scale (small at initialisation): another mask moves them by far more.
            let scale = whole.map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 0)
            for (a, b) in zip(joined, whole) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale, "shares \(shares)") }
        }
    }
}
