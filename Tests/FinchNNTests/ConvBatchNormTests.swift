import XCTest
import FinchTensor
@testable import FinchNN

/// The evaluation-time folding of BatchNorm into the preceding convolution.
final class ConvBatchNormTests: XCTestCase {
    private func pair(cin: Int, cout: Int, kernel: Int, stride: Int, groups: Int, bias: Bool,
                      padding: Conv2d.Padding?, activation: Activation.Kind, seed: UInt64) -> (Conv2d, BatchNorm2d) {
        var rng = RandomGenerator(seed: seed)
        let conv = Conv2d(cin, cout, kernelSize: kernel, stride: stride, padding: padding, groups: groups, bias: bias)
        conv.resetParameters(using: &rng)
        let bn = BatchNorm2d(cout, eps: 1e-3, activation: activation)
        // Statistics and affine parameters away from the identity, as after training.
        for (t, lo, hi) in [(bn.weight, Float(0.5), Float(1.5)), (bn.bias, -0.5, 0.5), (bn.runningMean, -0.3, 0.3),
                            (bn.runningVar, 0.2, 2.0)] {
            let u = Tensor.uniform([cout], low: lo, high: hi, using: &rng)
            t.basePointer.update(from: u.basePointer, count: cout)
        }
        return (conv, bn)
    }

    /// Folded against the two modules run separately, for every activation BatchNorm2d fuses, with
    /// and without a convolution bias, plain, depthwise, strided and TF-"same" padded convolutions.
    func testFoldedEqualsSeparateModulesInEval() {
        let activations: [Activation.Kind] = [.identity, .relu, .relu6, .hardswish, .hardsigmoid, .silu, .sigmoid]
        var rng = RandomGenerator(seed: 5)
        var roundedDifferently = 0
        for (k, activation) in activations.enumerated() {
            let configs: [(cin: Int, cout: Int, kernel: Int, stride: Int, groups: Int, bias: Bool, padding: Conv2d.Padding?)] = [
                (3, 5, 3, 2, 1, false, nil), (6, 6, 5, 1, 6, true, nil), (4, 7, 1, 1, 1, true, nil),
                (4, 4, 3, 2, 4, false, .same),
            ]
            for (j, c) in configs.enumerated() {
                let (conv, bn) = pair(cin: c.cin, cout: c.cout, kernel: c.kernel, stride: c.stride, groups: c.groups,
                                      bias: c.bias, padding: c.padding, activation: activation,
                                      seed: UInt64(10 * k + j))
                conv.eval()
                bn.eval()
                let x = Tensor.normal([2, c.cin, 9, 8], using: &rng)
                let (folded, separate) = noGrad { (convBatchNorm(conv, bn, x), bn(conv(x))) }
                XCTAssertEqual(folded.shape, separate.shape)
                assertClose(folded.scalars, separate.scalars, atol: 2e-5, rtol: 2e-5)
                if folded.scalars != separate.scalars { roundedDifferently += 1 }
            }
        }
        // Folding rounds differently, so identical results everywhere would mean it never ran.
        XCTAssertGreaterThan(roundedDifferently, 0, "the folded path did not run")
    }

    /// The end of a residual block, act(bn(conv(x)) + r), folded (sum and activation applied by the
    /// convolution's kernels) against the modules and ops run one by one: 3×3 (Winograd) and 1×1
    /// convolutions, ReLU and identity after the sum; and in training mode the modules still run.
    func testResidualEndFoldedEqualsSeparateOps() {
        var rng = RandomGenerator(seed: 9)
        var roundedDifferently = 0
        for (k, c) in [(cin: 16, cout: 16, kernel: 3, post: Activation.Kind.relu), (8, 6, 1, .identity), (4, 5, 3, .relu)]
            .enumerated() {
            let (conv, bn) = pair(cin: c.cin, cout: c.cout, kernel: c.kernel, stride: 1, groups: 1, bias: false,
                                  padding: nil, activation: .identity, seed: UInt64(40 + k))
            conv.eval()
            bn.eval()
            let x = Tensor.normal([2, c.cin, 9, 8], using: &rng), r = Tensor.normal([2, c.cout, 9, 8], using: &rng)
            let (folded, separate) = noGrad {
                (convBatchNorm(conv, bn, x, adding: r, then: c.post), Activation.apply(c.post, bn(conv(x)) + r))
            }
            XCTAssertEqual(folded.shape, separate.shape)
            assertClose(folded.scalars, separate.scalars, atol: 2e-5, rtol: 2e-5)
            if folded.scalars != separate.scalars { roundedDifferently += 1 }
            bn.train()
            let before = bn.runningMean.scalars
            let trained = convBatchNorm(conv, bn, x, adding: r, then: c.post)
            XCTAssertNotEqual(bn.runningMean.scalars, before, "training mode must run the BatchNorm module")
            XCTAssertNotNil(trained.gradFnName)
        }
        XCTAssertGreaterThan(roundedDifferently, 0, "the folded path did not run")
    }

    /// In training, and in evaluation when gradients are wanted, the end of a residual block is
    /// BatchNorm's one-op residual form, which must equal the modules and ops run one by one bit for
    /// bit: output, every gradient, running statistics and the batch counter. Where it does not
    /// apply (BatchNorm with an activation of its own, synchronised statistics, an activation other
    /// than ReLU or identity) the three ops run.
    func testResidualEndInTrainingEqualsSeparateOps() {
        var rng = RandomGenerator(seed: 12)
        let cases: [(post: Activation.Kind, bnActivation: Activation.Kind, training: Bool, synchronised: Bool, oneOp: Bool)] = [
            (.relu, .identity, true, false, true), (.identity, .identity, true, false, true),
            (.relu, .identity, false, false, true), (.silu, .identity, true, false, false),
            (.relu, .relu, true, false, false), (.relu, .identity, true, true, false),
        ]
        for (k, c) in cases.enumerated() {
            let x = Tensor.normal([2, 4, 7, 5], using: &rng), r0 = Tensor.normal([2, 6, 7, 5], using: &rng)
            func run(oneOp: Bool) -> (values: [[UInt32]], batches: Int64, name: String?) {
                let (conv, bn) = pair(cin: 4, cout: 6, kernel: 3, stride: 1, groups: 1, bias: false, padding: nil,
                                      activation: c.bnActivation, seed: UInt64(60 + k))
                if !c.training { bn.eval() }
                // A reducer that adds nothing: one process's statistics, through the synchronised path.
                if c.synchronised { bn.statisticsReducer = { _ in } }
                let r = r0.detach().requiringGrad()
                let y = oneOp ? convBatchNorm(conv, bn, x, adding: r, then: c.post)
                              : Activation.apply(c.post, bn(conv(x)) + r)
                (y * y).sum().backward()
                return ([y, conv.weight.grad!, bn.weight.grad!, bn.bias.grad!, r.grad!, bn.runningMean, bn.runningVar]
                            .map { $0.scalars.map(\.bitPattern) }, bn.numBatchesTracked.values[0], y.gradFnName)
            }
            let fused = run(oneOp: true), separate = run(oneOp: false)
            let label = "case \(k): \(c)"
            for (i, name) in ["y", "dW", "dγ", "dβ", "dr", "running mean", "running var"].enumerated() {
                XCTAssertEqual(fused.values[i], separate.values[i], "\(label): \(name)")
            }
            XCTAssertEqual(fused.batches, separate.batches, label)
            XCTAssertEqual(fused.batches, c.training ? 1 : 0, label)
            XCTAssertEqual(fused.name?.hasPrefix("batch_norm_add"), c.oneOp, "\(label): ran \(fused.name ?? "nil")")
        }
    }

    /// Training-mode BatchNorm, or anything that needs a gradient, runs the two modules as they
    /// are: batch statistics are used and updated, and gradients reach the convolution.
    func testTrainingAndGradientsUseTheModules() {
        var rng = RandomGenerator(seed: 7)
        let (conv, bn) = pair(cin: 3, cout: 4, kernel: 3, stride: 1, groups: 1, bias: true, padding: nil,
                              activation: .relu, seed: 1)
        let x = Tensor.normal([2, 3, 6, 6], using: &rng)
        let before = bn.runningMean.scalars
        let y = convBatchNorm(conv, bn, x)
        XCTAssertNotEqual(bn.runningMean.scalars, before, "training mode must update the running mean")
        XCTAssertEqual(bn.numBatchesTracked.values[0], 1)
        y.sum().backward()
        XCTAssertNotNil(conv.weight.grad)
        // Eval mode but gradients wanted (a frozen BatchNorm under fine-tuning): still the modules.
        conv.weight.grad = nil
        bn.eval()
        convBatchNorm(conv, bn, x).sum().backward()
        XCTAssertNotNil(conv.weight.grad, "the folded path has no gradient, so it must not run here")
    }
}
