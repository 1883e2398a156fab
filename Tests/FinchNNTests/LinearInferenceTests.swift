import XCTest
import FinchTensor
@testable import FinchNN

/// Linear's inference path (`linearInference`: bias written first, GEMM adding onto it).
final class LinearInferenceTests: XCTestCase {
    /// Against x·Wᵀ + b in Float64, for row counts that exercise the doubling bias fill (1, 5, 37),
    /// a transposed (strided) input, and a rank-3 input through the module.
    func testLinearInferenceEqualsDefinition() {
        var rng = RandomGenerator(seed: 12)
        for (m, k, n) in [(1, 3, 4), (5, 7, 9), (37, 16, 6)] {
            let w = Tensor.normal([n, k], using: &rng), b = Tensor.normal([n], using: &rng)
            for transposedInput in [false, true] {
                let x = transposedInput ? Tensor.normal([k, m], using: &rng).transposed() : Tensor.normal([m, k], using: &rng)
                let y = linearInference(x, weight: w, bias: b)
                XCTAssertEqual(y.shape, [m, n])
                let xs = x.contiguous().scalars, ws = w.scalars, bs = b.scalars, ys = y.scalars
                for r in 0..<m {
                    for c in 0..<n {
                        var ref = Double(bs[c])
                        for t in 0..<k { ref += Double(xs[r * k + t]) * Double(ws[c * k + t]) }
                        XCTAssertEqual(Double(ys[r * n + c]), ref, accuracy: 1e-5 * Swift.max(1, abs(ref)), "m=\(m) row \(r) col \(c)")
                    }
                }
            }
        }
    }

    /// The module takes the fused path only with nothing to differentiate; with gradients it records
    /// matmul + add, and both give the same values.
    func testModuleUsesInferencePathOnlyWithoutGradients() {
        var rng = RandomGenerator(seed: 13)
        let layer = Linear(8, 5)
        layer.resetParameters(using: &rng)
        let x = Tensor.normal([2, 3, 8], using: &rng)
        let inference = noGrad { layer(x) }
        let recorded = layer(x)
        XCTAssertNil(inference.gradFnName)
        XCTAssertNotNil(recorded.gradFnName, "with trainable weights the op must be recorded")
        XCTAssertEqual(inference.shape, [2, 3, 5])
        let a = inference.scalars, r = recorded.scalars
        for i in a.indices { XCTAssertEqual(a[i], r[i], accuracy: 1e-5 * Swift.max(1, abs(r[i]))) }
        recorded.sum().backward()
        XCTAssertNotNil(layer.weight.grad)
    }
}
