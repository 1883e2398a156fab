import CFinchKernels
import XCTest
import Foundation
@testable import FinchTensor

/// Every elementwise op and activation: forward values and gradients by finite differences,
/// including broadcasting in both directions.
final class ElementwiseGradientTests: XCTestCase {
    var rng = TestRNG(7)

    func testArithmeticWithBroadcasting() {
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([3, 1]), c = rng.tensor([4], 0.5, 2)
        assertGradients([a, b]) { $0[0] + $0[1] }
        assertGradients([a, b]) { $0[0] - $0[1] }
        assertGradients([a, b]) { $0[0] * $0[1] }
        assertGradients([a, c]) { $0[0] / $0[1] }
        let d = rng.tensor([2, 3, 4], 0.5, 2)
        assertGradients([c, d]) { $0[0] / $0[1] }
        assertGradients([a]) { -$0[0] }
        assertGradients([a]) { ($0[0] + 2) * 3 - 1 }
        assertGradients([c]) { 2 / $0[0] }
        assertGradients([a]) { 1 - $0[0] / 4 }
    }

    func testBroadcastForwardMatchesNumPyRules() {
        let a = Tensor([1, 2, 3], shape: [3, 1]), b = Tensor([10, 20], shape: [1, 2])
        let s = a + b
        XCTAssertEqual(s.shape, [3, 2])
        XCTAssertEqual(s.scalars, [11, 21, 12, 22, 13, 23])
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).transposed()   // strided view
        XCTAssertEqual((t * Tensor([1, 10], shape: [2])).scalars, [1, 40, 2, 50, 3, 60])
    }

    func testPowExpLogSqrtRsqrtAbs() {
        let pos = rng.tensor([2, 5], 0.3, 2), any = rng.tensorAvoiding([2, 5], -2, 2, kinks: [0])
        assertGradients([pos]) { $0[0].pow(3) }
        assertGradients([pos]) { $0[0].pow(2) }
        assertGradients([pos]) { $0[0].pow(-0.5) }
        let e = rng.tensor([5], -1, 1)
        assertGradients([pos, e]) { $0[0].pow($0[1]) }
        assertGradients([any]) { $0[0].exp() }
        assertGradients([pos]) { $0[0].log() }
        assertGradients([pos]) { $0[0].sqrt() }
        assertGradients([pos]) { $0[0].rsqrt() }
        assertGradients([any]) { $0[0].abs() }
        assertClose(Tensor([4, 9]).rsqrt().scalars, [0.5, 1.0 / 3])
        assertClose(Tensor([-2, 3]).pow(2).scalars, [4, 9])
    }

    func testClampMaximumMinimumWhere() {
        let a = rng.tensorAvoiding([3, 4], -2, 2, kinks: [-0.5, 0.7])
        assertGradients([a]) { $0[0].clamp(min: -0.5, max: 0.7) }
        assertGradients([a]) { $0[0].clamp(min: -0.5) }
        let b = rng.tensor([4]), c = rng.tensor([3, 4])
        // Keep a and c apart so the maximum's kink is not inside a finite-difference step.
        let far = Tensor(zip(a.scalars, c.scalars).map { abs($0 - $1) < 0.05 ? $0 + 0.2 : $0 }, shape: [3, 4], requiresGrad: true)
        assertGradients([far, c]) { Tensor.maximum($0[0], $0[1]) }
        assertGradients([far, c]) { Tensor.minimum($0[0], $0[1]) }
        let cond = Tensor([1, 0, 0, 1], shape: [4])
        assertGradients([c, b]) { Tensor.where(cond, $0[0], $0[1]) }
        XCTAssertEqual(Tensor.where(Tensor([1, 0]), Tensor([1, 2]), Tensor([5])).scalars, [1, 5])
        // Ties share the gradient, as in PyTorch.
        let x = Tensor([1, 2], requiresGrad: true), y = Tensor([1, 3], requiresGrad: true)
        Tensor.maximum(x, y).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [0.5, 0])
        XCTAssertEqual(y.grad!.scalars, [0.5, 1])
    }

    func testActivationGradients() {
        let x = rng.tensorAvoiding([2, 3, 5], -7, 7, kinks: [-3, 0, 3, 6])
        assertGradients([x]) { $0[0].relu() }
        assertGradients([x]) { $0[0].relu6() }
        assertGradients([x]) { $0[0].leakyRelu(0.1) }
        assertGradients([x]) { $0[0].sigmoid() }
        assertGradients([x]) { $0[0].tanh() }
        assertGradients([x]) { $0[0].hardsigmoid() }
        assertGradients([x]) { $0[0].hardswish() }
        assertGradients([x]) { $0[0].silu() }
        assertGradients([x]) { $0[0].gelu() }
        assertGradients([x]) { $0[0].gelu(approximate: .tanh) }
    }

    /// Values from torch 2.x (`F.hardswish`, `F.gelu`, …) at a few points, including the kinks.
    func testActivationValuesMatchPyTorch() {
        let x = Tensor([-4, -3, -1.5, 0, 0.5, 3, 7])
        assertClose(x.relu6().scalars, [0, 0, 0, 0, 0.5, 3, 6])
        assertClose(x.hardsigmoid().scalars, [0, 0, 0.25, 0.5, 0.5833333, 1, 1])
        assertClose(x.hardswish().scalars, [0, 0, -0.375, 0, 0.2916667, 3, 7])
        assertClose(x.silu().scalars, [-0.07194484, -0.14227763, -0.27363828, 0, 0.31122968, 2.8577223, 6.993622])
        assertClose(x.gelu().scalars, [-1.2671e-04, -4.0497e-03, -1.0020e-01, 0, 3.4571e-01, 2.9960e+00, 7.0], atol: 2e-5, rtol: 1e-4)
        assertClose(x.gelu(approximate: .tanh).scalars,
                    [-7.0143e-05, -3.6374e-03, -1.0042e-01, 0, 3.4571e-01, 2.9964e+00, 7.0], atol: 2e-5, rtol: 1e-4)
        assertClose(x.leakyRelu().scalars, [-0.04, -0.03, -0.015, 0, 0.5, 3, 7])
        // PyTorch's backward conventions at the kinks.
        let k = Tensor([-3, 0, 3, 6], requiresGrad: true)
        k.hardswish().sum().backward()
        assertClose(k.grad!.scalars, [-0.5, 0.5, 1.5, 1])
        let r = Tensor([0, 6], requiresGrad: true)
        r.relu6().sum().backward()
        XCTAssertEqual(r.grad!.scalars, [0, 0])
        let c = Tensor([-1, 1], requiresGrad: true)
        c.clamp(min: -1, max: 1).sum().backward()
        XCTAssertEqual(c.grad!.scalars, [1, 1])
    }

    /// The vectorised exponential behind SiLU, sigmoid and softmax (CFinchKernels, on whichever
    /// instruction set this CPU has), against Float64 exp over the whole Float range, with the
    /// special values and a block length that leaves a tail.
    func testVectorExpAccuracy() {
        let native = String(cString: finch_kernels_isa())
        defer { _ = finch_kernels_use(native) }
        var tested = 0
        for isa in ["avx512", "avx2", "generic"] where finch_kernels_use(isa) == 1 {
            tested += 1
            checkVectorExp(isa)
        }
        XCTAssertGreaterThanOrEqual(tested, 1)
    }

    private func checkVectorExp(_ isa: String) {
        var worst: Double = 0
        var values = [Float]()
        var v: Float = -104
        while v < 89 {
            values.append(v)
            v += 0.0137
        }
        values += [0, -0.0, 1e-30, -1e-30, 88.72, -87.3, -103.9]
        values.withUnsafeBufferPointer { src in
            var out = [Float](repeating: 0, count: values.count)
            out.withUnsafeMutableBufferPointer { dst in
                finch_exp_shifted(src.baseAddress!, dst.baseAddress!, values.count, 0)
            }
            for (x, y) in zip(values, out) {
                let ref = Foundation.exp(Double(x))
                if ref > Double(Float.greatestFiniteMagnitude) {
                    XCTAssertEqual(y, .infinity, "exp(\(x))")
                    continue
                }
                // Relative error where the result is a normal Float; absolute (in units of the
                // smallest normal) below that, where Float itself has fewer significant bits.
                let err = ref >= Double(Float.leastNormalMagnitude)
                    ? abs(Double(y) - ref) / ref : abs(Double(y) - ref) / Double(Float.leastNormalMagnitude)
                worst = max(worst, err)
            }
        }
        XCTAssertLessThan(worst, 3e-7, "\(isa): worst relative error \(worst)")
        let special: [Float] = [.infinity, -.infinity, .nan, 89, -105, 1000, -1000]
        var out = [Float](repeating: 0, count: special.count)
        special.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                finch_exp_shifted(src.baseAddress!, dst.baseAddress!, special.count, 0)
            }
        }
        XCTAssertEqual(out[0], .infinity)
        XCTAssertEqual(out[1], 0)
        XCTAssertTrue(out[2].isNaN)
        XCTAssertEqual(out[3], .infinity)
        XCTAssertEqual(out[4], 0)
        XCTAssertEqual(out[5], .infinity)
        XCTAssertEqual(out[6], 0)
        // The tail lanes get the same arithmetic as full vectors: results do not depend on position.
        let row = (0..<37).map { Float($0) * 0.37 - 6 }
        let whole = Tensor(row, shape: [37]).silu().scalars
        let pieces = (0..<37).map { Tensor([row[$0]], shape: [1]).silu().scalars[0] }
        XCTAssertEqual(whole, pieces, isa)
    }
    /// SiLU and sigmoid from CFinchKernels on every instruction set this CPU has (AVX-512 takes
    /// the reciprocal estimate and a Newton step instead of a division) against Float64, over
    /// −100…100 and the special values.
    func testVectorLogisticAccuracy() {
        let native = String(cString: finch_kernels_isa())
        defer { _ = finch_kernels_use(native) }
        var values = [Float]()
        var v: Float = -100
        while v < 100 {
            values.append(v)
            v += 0.0173
        }
        values += [0, -0.0, 1e-30, -1e-30, 88.8, -88.8, 104, -104]
        for isa in ["avx512", "avx2", "generic"] where finch_kernels_use(isa) == 1 {
            var silu = [Float](repeating: 0, count: values.count), sigmoid = silu
            values.withUnsafeBufferPointer { src in
                silu.withUnsafeMutableBufferPointer { finch_silu(src.baseAddress!, $0.baseAddress!, values.count) }
                sigmoid.withUnsafeMutableBufferPointer { finch_sigmoid(src.baseAddress!, $0.baseAddress!, values.count) }
            }
            var worst = 0.0
            for (k, x) in values.enumerated() {
                let s = 1 / (1 + Foundation.exp(-Double(x)))
                for (y, ref) in [(silu[k], Double(x) * s), (sigmoid[k], s)] {
                    // Relative, with a floor of 1e-30: below x ≈ −88.7, e⁻ˣ overflows Float and both
                    // the division and PyTorch's kernel give 0 for values under 1e-36.
                    worst = max(worst, abs(Double(y) - ref) / max(abs(ref), 1e-30))
                }
            }
            XCTAssertLessThan(worst, 5e-7, "\(isa): worst relative error \(worst)")
            let special: [Float] = [.infinity, -.infinity, .nan]
            var out = [Float](repeating: 0, count: 3), outS = out
            special.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { finch_silu(src.baseAddress!, $0.baseAddress!, 3) }
                outS.withUnsafeMutableBufferPointer { finch_sigmoid(src.baseAddress!, $0.baseAddress!, 3) }
            }
            XCTAssertEqual(out[0], .infinity, isa)
            XCTAssertTrue(out[1].isNaN, "\(isa): −∞·0, as x·sigmoid(x) is in PyTorch")
            XCTAssertTrue(out[2].isNaN, isa)
            XCTAssertEqual(outS[0], 1, isa)
            XCTAssertEqual(outS[1], 0, isa)
            XCTAssertTrue(outS[2].isNaN, isa)
        }
    }
}
