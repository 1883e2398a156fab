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

    /// The BatchNorm inputs (the convolutions' outputs) stay: BatchNorm outputs, ReLU outputs and
    /// residual block outputs are rebuilt from them in backward, with identical gradients.
    func testResNetKeepsOnlyConvolutionOutputs() throws {
        let chained = try step(chains: true)
        let local = try step(chains: false)
        XCTAssertEqual(chained.loss.bitPattern, local.loss.bitPattern)
        XCTAssertTrue(chained.grads == local.grads, "gradients differ with chained recomputation")
        let float = MemoryLayout<Float>.stride
        // ResNet18 at 32 px, batch 2: the stem's 64×16×16 convolution, then per stage (8, 4, 2, 1 px
        // planes of 64…512 channels) four 3×3 convolutions and, from stage 2, a projection.
        let convOutputs = 2 * (64 * 16 * 16 + 4 * 64 * 64 + 5 * 128 * 16 + 5 * 256 * 4 + 5 * 512 * 1) * float
        // The block outputs of stages 2–4 (128×4×4, 256×2×2, 512×1×1, two blocks each) are rebuilt
        // from their BatchNorms'. Stage 1's are kept: their chain starts at the max-pooled stem, which
        // pooling cannot rebuild (it keeps only its argmax), so the first block's sum has no recipe.
        let rebuiltOutputs = 2 * 2 * (128 * 16 + 256 * 4 + 512 * 1) * float
        XCTAssertEqual(local.keptBytes - chained.keptBytes, rebuiltOutputs)
        let pooledStem = 2 * 64 * 8 * 8 * float, stage1Outputs = 2 * pooledStem
        XCTAssertGreaterThanOrEqual(chained.keptBytes, convOutputs + pooledStem + stage1Outputs)
        // Beyond them: per-channel batch statistics (38 KiB), pooled features and logits.
        XCTAssertLessThan(chained.keptBytes, convOutputs + pooledStem + stage1Outputs + 48 << 10, "kept \(chained.keptBytes) bytes")
    }
}
