import XCTest
@testable import FinchTensor

final class DropoutTests: XCTestCase {
    func testDropoutScalesKeptUnitsAndIsIdentityInEval() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor(repeating: 2, shape: [10_000])
        let y = dropout(x, p: 0.25, training: true, using: &rng)
        let values = y.scalars
        XCTAssertTrue(values.allSatisfy { $0 == 0 || abs($0 - 2 / 0.75) < 1e-6 })
        // Kept fraction ~ Binomial(10000, 0.75): sd ≈ 0.0043, so ±0.02 is over 4.5 sd.
        let kept = Double(values.filter { $0 != 0 }.count) / 10_000
        XCTAssertEqual(kept, 0.75, accuracy: 0.02)
        XCTAssertTrue(dropout(x, p: 0.25, training: false, using: &rng) === x)
        XCTAssertEqual(dropout(x, p: 1, training: true, using: &rng).scalars.max(), 0)
    }

    func testDropoutIsReproducibleFromTheSeedAndRoutesGradientsThroughTheMask() {
        var r1 = RandomGenerator(seed: 9), r2 = RandomGenerator(seed: 9)
        var data = TestRNG(1)
        let x = data.tensor([4, 5])
        let a = dropout(x, p: 0.5, training: true, using: &r1)
        let b = dropout(x, p: 0.5, training: true, using: &r2)
        XCTAssertEqual(a.scalars, b.scalars)
        a.sum().backward()
        // d/dx of sum(dropout(x)) is the scaled mask: 2 where kept, 0 where dropped.
        XCTAssertEqual(x.grad!.scalars, a.scalars.map { $0 == 0 ? 0 : 2 })
        // Finite differences with the mask held fixed (same seed for every evaluation).
        assertGradients([x]) { xs in
            var r = RandomGenerator(seed: 3)
            return dropout(xs[0], p: 0.3, training: true, using: &r)
        }
    }

    func testRandomTensorFactoriesAreSeeded() {
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        XCTAssertEqual(Tensor.normal([3, 3], using: &r1).scalars, Tensor.normal([3, 3], using: &r2).scalars)
        let u = Tensor.uniform([1000], low: -2, high: 3, using: &r1)
        XCTAssertTrue(u.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
        let b = Tensor.bernoulli([1000], probability: 0.3, using: &r1)
        XCTAssertTrue(b.scalars.allSatisfy { $0 == 0 || $0 == 1 })
    }
}
