import XCTest
@testable import FinchTensor

/// Convolutions after BatchNorm or SiLU keep a recipe for their input instead of the map.
final class SavedTensorTests: XCTestCase {
    // The shared empty storage of graph nodes is made on first use: not inside a measurement.
    override func setUp() { _ = TensorStorage.empty }
    override func tearDown() {
        SavedActivations.recompute = true
        SavedActivations.chains = true
    }

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
        XCTAssertEqual(recorded.rematerialize!.value().scalars.map(\.bitPattern), recorded.scalars.map(\.bitPattern))
        // A view of the result is not the result: it keeps its values.
        XCTAssertFalse(SavedTensor(recorded.permuted(0, 1, 3, 2), dense: recorded).isRecomputed)
    }

    /// Two bottleneck-style residual blocks: relu(BN(conv(h)) + shortcut), the shortcut a projected
    /// BatchNorm for the first and the block input itself for the second, each output read by a
    /// convolution.
    private func residualStep(chains: Bool, fused: Bool = false) -> Step {
        SavedActivations.chains = chains
        var rng = RandomGenerator(seed: 23)
        let x = Tensor.normal([2, 4, 6, 6], using: &rng).requiringGrad()
        let ws = (0..<4).map { _ in Tensor.normal([4, 4, 1, 1], std: 0.5, using: &rng).requiringGrad() }
        let gammas = (0..<3).map { _ in Tensor.normal([4], using: &rng).requiringGrad() }
        let betas = (0..<3).map { _ in Tensor.normal([4], using: &rng).requiringGrad() }
        func bn(_ t: Tensor, _ i: Int) -> Tensor {
            batchNorm2d(t, weight: gammas[i], bias: betas[i], runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]),
                        training: true)
        }
        let before = TensorStorage.liveBytes
        let loss: Tensor
        do {
            // Each block's end as three ops, or as BatchNorm's residual form (the training path of
            // `BatchNorm2d(_:adding:then:)`).
            func end(_ i: Int, _ t: Tensor, _ shortcut: Tensor) -> Tensor {
                guard fused else { return (bn(t, i) + shortcut).relu() }
                return batchNorm2d(t, weight: gammas[i], bias: betas[i], runningMean: Tensor.zeros([4]),
                                   runningVar: Tensor.ones([4]), training: true, adding: shortcut, then: .relu)
            }
            let r1 = end(0, conv2d(x, weight: ws[0]), bn(conv2d(x, weight: ws[1]), 1))
            let r2 = end(2, conv2d(r1, weight: ws[2]), r1)
            let y = conv2d(r2, weight: ws[3])
            loss = (y * y).mean()
        }
        let kept = TensorStorage.liveBytes - before
        loss.backward()
        return Step(loss: loss.item, grads: ([x] + ws + gammas + betas).map { $0.grad!.scalars }, keptBytes: kept)
    }

    func testResidualBlockOutputsAreRebuiltNotKept() {
        let kept = residualStep(chains: false)
        let rebuilt = residualStep(chains: true)
        XCTAssertEqual(rebuilt.loss.bitPattern, kept.loss.bitPattern)
        for (i, (a, b)) in zip(rebuilt.grads, kept.grads).enumerated() {
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "gradient \(i) differs")
        }
        // Without chains each block output is held (by its ReLU and the next convolution, shared);
        // with them only the BatchNorm inputs are, and the two block outputs are rebuilt from those.
        let mapBytes = 2 * 4 * 6 * 6 * MemoryLayout<Float>.stride
        XCTAssertEqual(kept.keptBytes - rebuilt.keptBytes, 2 * mapBytes)
    }

    /// BatchNorm's residual form gives the three ops' loss and gradients bit for bit and keeps
    /// exactly what they keep, with chains and without.
    func testResidualBatchNormKeepsWhatTheThreeOpsKeep() {
        for chains in [true, false] {
            let separate = residualStep(chains: chains)
            let fused = residualStep(chains: chains, fused: true)
            XCTAssertEqual(fused.loss.bitPattern, separate.loss.bitPattern, "chains \(chains)")
            for (i, (a, b)) in zip(fused.grads, separate.grads).enumerated() {
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "chains \(chains): gradient \(i) differs")
            }
            XCTAssertEqual(fused.keptBytes, separate.keptBytes, "chains \(chains)")
        }
    }

    /// The residual form's recipe rebuilds its output bit for bit from BatchNorm's input and the
    /// shortcut's recipe, and only when the shortcut has one.
    func testResidualBatchNormOutputIsRebuiltFromTheShortcutsRecipe() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.normal([2, 3, 4, 5], using: &rng).requiringGrad()
        let s = Tensor.normal([2, 3, 4, 5], using: &rng).requiringGrad()
        func bn(_ t: Tensor) -> Tensor {
            batchNorm2d(t, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        func end(_ t: Tensor, _ shortcut: Tensor) -> Tensor {
            batchNorm2d(t, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true,
                        adding: shortcut, then: .relu)
        }
        let first = end(x * 2, bn(s))
        let second = end(x * 3, first)
        XCTAssertEqual(second.rematerialize!.depth, 2)
        XCTAssertEqual(second.rematerialize!.transientValue().scalars.map(\.bitPattern), second.scalars.map(\.bitPattern))
        XCTAssertEqual(first.rematerialize!.value().scalars.map(\.bitPattern), first.scalars.map(\.bitPattern))
        XCTAssertNil(end(x * 2, s).rematerialize, "a leaf shortcut is kept as it is, so the output is too")
        SavedActivations.chains = false
        XCTAssertNil(end(x * 2, bn(s)).rematerialize)
    }

    func testAChainIsBuiltOnceAndOnlyForSameShapedRecordedOperands() {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.normal([2, 3, 4, 4], using: &rng).requiringGrad()
        func bn(_ t: Tensor) -> Tensor {
            batchNorm2d(t, weight: nil, bias: nil, runningMean: Tensor.zeros([3]), runningVar: Tensor.ones([3]), training: true)
        }
        let a = bn(x * 2), b = bn(x * 3)
        let r = (a + b).relu()
        let rebuilt = r.rematerialize!
        XCTAssertFalse(rebuilt.isBuilt)
        let first = rebuilt.value()
        XCTAssertEqual(first.scalars.map(\.bitPattern), r.scalars.map(\.bitPattern))
        XCTAssertTrue(rebuilt.value() === first, "a second reader rebuilt the map again")
        // Broadcast sums, sums with a kept operand, and ReLU of such a sum keep their maps.
        XCTAssertNil((a + Tensor.ones([1, 3, 1, 1])).rematerialize)
        XCTAssertNil((a + x).rematerialize)
        XCTAssertNil((a + x).relu().rematerialize)
        SavedActivations.chains = false
        XCTAssertNil((a + b).relu().rematerialize)
    }
}
