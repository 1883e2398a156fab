import XCTest
@testable import FinchTensor

/// Convolutions after BatchNorm or SiLU keep a recipe for their input instead of the map.
final class SavedTensorTests: XCTestCase {
    // The shared empty storage of graph nodes is made on first use: not inside a measurement.
    override func setUp() { _ = TensorStorage.empty }
    override func tearDown() { SavedActivations.recompute = true }

    private struct Step {
        var loss: Float
        var grads: [[Float]]
        /// Tensor bytes held between forward and backward, beyond the inputs and parameters.
        var keptBytes: Int
    }

    /// conv → BN(+act) → conv → act → conv, the chain of every block in the zoo.
    private func step(recompute: Bool, activation: FusedActivation, second: (Tensor) -> Tensor) -> Step {
        SavedActivations.recompute = recompute
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.normal([2, 3, 10, 10], using: &rng).requiringGrad()
        let w1 = Tensor.normal([6, 3, 3, 3], std: 0.3, using: &rng).requiringGrad()
        let w2 = Tensor.normal([6, 6, 3, 3], std: 0.3, using: &rng).requiringGrad()
        let w3 = Tensor.normal([4, 6, 1, 1], std: 0.3, using: &rng).requiringGrad()
        let gamma = Tensor.normal([6], using: &rng).requiringGrad(), beta = Tensor.normal([6], using: &rng).requiringGrad()
        let rm = Tensor.zeros([6]), rv = Tensor.ones([6])
        let before = TensorStorage.liveBytes
        let loss: Tensor
        do {
            let h = batchNorm2d(conv2d(x, weight: w1, padding: (1, 1)), weight: gamma, bias: beta, runningMean: rm,
                                runningVar: rv, training: true, activation: activation)
            let y = conv2d(second(conv2d(h, weight: w2, padding: (1, 1))), weight: w3)
            loss = (y * y).mean()
        }
        let kept = TensorStorage.liveBytes - before
        loss.backward()
        return Step(loss: loss.item, grads: [x, w1, w2, w3, gamma, beta].map { $0.grad!.scalars }, keptBytes: kept)
    }

    func testRecomputedInputsGiveIdenticalGradientsAndKeepLess() {
        let mapBytes = 2 * 6 * 10 * 10 * MemoryLayout<Float>.stride
        for activation in [FusedActivation.identity, .relu, .relu6, .silu, .hardswish] {
            for (name, second) in [("silu", { (t: Tensor) in t.silu() }), ("hardswish", { $0.hardswish() }),
                                   ("relu6", { $0.relu6() }), ("hardsigmoid", { $0.hardsigmoid() })] {
                let kept = step(recompute: false, activation: activation, second: second)
                let rebuilt = step(recompute: true, activation: activation, second: second)
                XCTAssertEqual(rebuilt.loss.bitPattern, kept.loss.bitPattern)
                for (a, b) in zip(rebuilt.grads, kept.grads) {
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(activation) then \(name): gradients differ")
                }
                // Neither the BatchNorm output nor the activation output is held for the convolutions.
                XCTAssertEqual(kept.keptBytes - rebuilt.keptBytes, 2 * mapBytes, "\(activation) then \(name)")
            }
        }
    }

    func testSumsAndDifferencesKeepNeitherOperand() {
        let x = Tensor.ones([1000]).requiringGrad()
        let before = TensorStorage.liveBytes
        let loss: Tensor
        do {
            let a = x * 2, b = x * 3, c = x * 4
            loss = (a + b - c).sum()
        }
        // Scaling keeps nothing either: only the loss is left between forward and backward.
        XCTAssertEqual(TensorStorage.liveBytes - before, 4, "operands of + or - are kept for backward")
        loss.backward()
        XCTAssertEqual(x.grad!.scalars, [Float](repeating: 1, count: 1000))
    }

    func testOnlyRecordedResultsCarryARecipe() {
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.normal([2, 3, 4, 4], using: &rng)
        let rm = Tensor.zeros([3]), rv = Tensor.ones([3])
        let unrecorded = batchNorm2d(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        XCTAssertNil(unrecorded.rematerialize, "nothing needs a gradient: no recipe to hold the input")
        XCTAssertNil(x.silu().rematerialize)
        let xg = x.detach().requiringGrad()
        let recorded = batchNorm2d(xg, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        XCTAssertTrue(SavedTensor(recorded, dense: recorded).isRecomputed)
        XCTAssertEqual(recorded.rematerialize!().scalars.map(\.bitPattern), recorded.scalars.map(\.bitPattern))
        // A view of the result is not the result: it keeps its values.
        XCTAssertFalse(SavedTensor(recorded.permuted(0, 1, 3, 2), dense: recorded).isRecomputed)
    }
}
