import Foundation
import XCTest
@testable import FinchTensor
@testable import FinchNN

/// Linear's inference path (`linearInference`: bias written first, GEMM adding onto it, the
/// activation after, block of rows by block of rows).
final class LinearInferenceTests: XCTestCase {
    /// Against act(x·Wᵀ + b) in Float64, for 1, 5 and 37 rows in one block and in blocks of 16 rows
    /// (the last one partial), a transposed (strided) input, with and without an activation.
    func testLinearInferenceEqualsDefinition() {
        var rng = RandomGenerator(seed: 12)
        let saved = LinearInference.blockFloats
        defer { LinearInference.blockFloats = saved }
        for blockFloats in [saved, 1] {
            LinearInference.blockFloats = blockFloats
            for (m, k, n) in [(1, 3, 4), (5, 7, 9), (37, 16, 6)] {
                let w = Tensor.normal([n, k], using: &rng), b = Tensor.normal([n], using: &rng)
                for transposedInput in [false, true] {
                    for activation in [FusedActivation.identity, .silu] {
                        let x = transposedInput ? Tensor.normal([k, m], using: &rng).transposed()
                            : Tensor.normal([m, k], using: &rng)
                        let y = linearInference(x, weight: w, bias: b, activation: activation)
                        XCTAssertEqual(y.shape, [m, n])
                        let xs = x.contiguous().scalars, ws = w.scalars, bs = b.scalars, ys = y.scalars
                        for r in 0..<m {
                            for c in 0..<n {
                                var ref = Double(bs[c])
                                for t in 0..<k { ref += Double(xs[r * k + t]) * Double(ws[c * k + t]) }
                                if activation == .silu { ref /= 1 + exp(-ref) }
                                XCTAssertEqual(Double(ys[r * n + c]), ref, accuracy: 1e-5 * Swift.max(1, abs(ref)),
                                               "m=\(m) row \(r) col \(c), \(activation), block floats \(blockFloats)")
                            }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(LinearInference.blockRows(m: 37, n: 6), Swift.min(16, (37 + Parallel.threads - 1) / Parallel.threads))
    }

    /// Mlp in inference puts its activation into fc1's pass; the values match the recorded path.
    func testMlpFusesItsActivationInInference() {
        var rng = RandomGenerator(seed: 14)
        for activation in [Activation.Kind.silu, .gelu] {
            let mlp = Mlp(6, hidden: 12, activation: activation)
            mlp.fc1.resetParameters(using: &rng)
            mlp.fc2.resetParameters(using: &rng)
            let x = Tensor.normal([2, 5, 6], using: &rng)
            let inference = noGrad { mlp(x) }, recorded = mlp(x)
            XCTAssertNil(inference.gradFnName)
            XCTAssertNotNil(recorded.gradFnName)
            let a = inference.scalars, r = recorded.scalars
            XCTAssertEqual(a.count, r.count)
            for i in a.indices { XCTAssertEqual(a[i], r[i], accuracy: 1e-5 * Swift.max(1, abs(r[i])), "\(activation)") }
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
