import XCTest
@testable import FinchTensor
@testable import FinchNN

/// What a ResNet training step keeps between forward and backward, counted in tensor bytes.
final class ResidualMemoryTests: XCTestCase {
    override func tearDown() { SavedActivations.chains = true }

    private struct Step {
        var keptBytes: Int
        var loss: Float
        var grads: [[UInt32]]
    }

    private func step(chains: Bool) throws -> Step {
        SavedActivations.chains = chains
        let net = try ModelRegistry.create("resnet18", numClasses: 10, seed: 3)
        net.train()
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.normal([2, 3, 32, 32], using: &rng)
        _ = TensorStorage.empty
        let before = TensorStorage.liveBytes
        let loss = Loss.crossEntropy(net(x), labels: [1, 7])
        let kept = TensorStorage.liveBytes - before
        loss.backward()
        return Step(keptBytes: kept, loss: loss.item,
                    grads: net.namedParameters().map { $0.tensor.grad!.scalars.map(\.bitPattern) })
    }

    /// Only the BatchNorm inputs (the convolutions' outputs) stay: every BatchNorm output, ReLU
    /// output and residual block output is rebuilt from them in backward, with identical gradients.
    func testResNetKeepsOnlyConvolutionOutputs() throws {
        let chained = try step(chains: true)
        let local = try step(chains: false)
        XCTAssertEqual(chained.loss.bitPattern, local.loss.bitPattern)
        XCTAssertTrue(chained.grads == local.grads, "gradients differ with chained recomputation")
        let float = MemoryLayout<Float>.stride
        // ResNet18 at 32 px, batch 2: the stem's 64×16×16 convolution, then per stage (8, 4, 2, 1 px
        // planes of 64…512 channels) four 3×3 convolutions and, from stage 2, a projection.
        let convOutputs = 2 * (64 * 16 * 16 + 4 * 64 * 64 + 5 * 128 * 16 + 5 * 256 * 4 + 5 * 512 * 1) * float
        // Eight block outputs, 64×8×8 … 512×1×1 twice each.
        let blockOutputs = 2 * 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512 * 1) * float
        XCTAssertEqual(local.keptBytes - chained.keptBytes, blockOutputs)
        // The max-pooled stem is not rebuildable (pooling keeps only its argmax): the first block keeps it.
        let pooledStem = 2 * 64 * 8 * 8 * float
        XCTAssertGreaterThanOrEqual(chained.keptBytes, convOutputs + pooledStem)
        // Beyond them: logits, pooled features, per-channel statistics.
        XCTAssertLessThan(chained.keptBytes, convOutputs + pooledStem + 32 << 10, "kept \(chained.keptBytes) bytes")
    }
}
