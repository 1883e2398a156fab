import XCTest
import FinchTensor
@testable import FinchNN

/// Reference values computed with torch 2.13 (`F.cross_entropy`, `F.kl_div`, `F.nll_loss`) on these inputs.
final class LossTests: XCTestCase {
    let logits: [Float] = [1.0, 2.0, 0.5, 0.1, -1.0, 3.0, 2.0, 2.0, 2.0, 0.3, 0.2, -0.4]
    let labels = [1, 2, 0, 2]
    let weights: [Float] = [0.5, 2.0, 1.5]
    let teacher: [Float] = [0.46148762, 0.30934441, 0.22916797, 0.57611692, 0.21194157, 0.21194157,
                            0.00012338, 0.00012338, 0.9997533, 0.33222502, 0.36716542, 0.30060959]

    func x(_ grad: Bool = false) -> Tensor { Tensor(logits, shape: [4, 3], requiresGrad: grad) }

    func testCrossEntropyVariantsMatchPyTorch() {
        XCTAssertEqual(Loss.crossEntropy(x(), labels: labels).item, 0.80245423, accuracy: 1e-6)
        XCTAssertEqual(Loss.crossEntropy(x(), labels: labels, labelSmoothing: 0.1).item, 0.86995423, accuracy: 1e-6)
        XCTAssertEqual(Loss.crossEntropy(x(), labels: labels, classWeights: weights).item, 0.71787226, accuracy: 1e-6)
        let xg = x(true)
        let l = Loss.crossEntropy(xg, labels: labels, labelSmoothing: 0.2, classWeights: weights, ignoreIndex: 0)
        XCTAssertEqual(l.item, 0.79843616, accuracy: 1e-6)
        l.backward()
        assertClose(xg.grad!.scalars, [0.07965691, -0.11201483, 0.0323579, 0.00837065, -0.02166118, 0.01329052,
                                       0, 0, 0, 0.11548313, 0.08385905, -0.1993422], atol: 1e-6)
        XCTAssertEqual(Loss.nll(x().logSoftmax(axis: 1), labels: labels, classWeights: weights).item, 0.71787226, accuracy: 1e-6)
    }

    func testKLDivergenceAndSoftTargetCrossEntropyMatchPyTorch() {
        let t = Tensor(teacher, shape: [4, 3])
        XCTAssertEqual(Loss.klDivergence(x().logSoftmax(axis: 1), target: t).item, 0.73754179, accuracy: 2e-5)
        XCTAssertEqual(Loss.klDivergence(x().logSoftmax(axis: 1), target: t.log(), logTarget: true).item, 0.73754179, accuracy: 2e-5)
        // A zero target probability contributes 0, not NaN.
        let first = Tensor([1.0, 2.0, 0.5], shape: [1, 3])
        XCTAssertEqual(Loss.klDivergence(first.logSoftmax(axis: 1), target: Tensor([0, 1, 0], shape: [1, 3])).item,
                       0.46436879, accuracy: 1e-6)
        XCTAssertEqual(Loss.softTargetCrossEntropy(x(), targets: t).item, 1.52017629, accuracy: 1e-5)
    }

    func testLossGradientsByFiniteDifferences() {
        let l = x(true)
        let t = Tensor(teacher, shape: [4, 3])
        assertGradientsNN([l]) { Loss.crossEntropy($0[0], labels: self.labels, labelSmoothing: 0.1, classWeights: self.weights) }
        assertGradientsNN([l]) { Loss.softTargetCrossEntropy($0[0], targets: t) }
        assertGradientsNN([l]) { Loss.klDivergence($0[0].logSoftmax(axis: 1), target: t) }
    }
}
