import XCTest
import CFinchKernels
@testable import FinchTensor

final class ReductionGradientTests: XCTestCase {
    var rng = TestRNG(11)

    func testSumMeanOverAnyAxes() {
        let x = rng.tensor([2, 3, 4])
        XCTAssertEqual(x.sum(axes: [0, 2]).shape, [3])
        XCTAssertEqual(x.sum(axes: [0, 2], keepDim: true).shape, [1, 3, 1])
        XCTAssertEqual(x.sum().shape, [])
        assertClose([x.sum().item], [x.scalars.reduce(0, +)], atol: 1e-5)
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(t.sum(axis: 0).scalars, [5, 7, 9])
        XCTAssertEqual(t.sum(axis: 1).scalars, [6, 15])
        XCTAssertEqual(t.transposed().sum(axis: 0).scalars, [6, 15])
        XCTAssertEqual(t.mean(axis: -1).scalars, [2, 5])
        for axes in [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]] {
            assertGradients([x]) { $0[0].sum(axes: axes) }
            assertGradients([x]) { $0[0].mean(axes: axes, keepDim: true) }
        }
    }

    func testVarianceBiasedAndUnbiased() {
        let t = Tensor([1, 2, 3, 4], shape: [2, 2])
        assertClose(t.variance(axes: [1], unbiased: false).scalars, [0.25, 0.25])
        assertClose(t.variance(axes: [1], unbiased: true).scalars, [0.5, 0.5])
        assertClose([t.variance().item], [1.6666666])
        let x = rng.tensor([2, 3, 4])
        assertGradients([x]) { $0[0].variance(axes: [0, 2], unbiased: false) }
        assertGradients([x]) { $0[0].variance(axes: [1], unbiased: true, keepDim: true) }
    }

    func testMaxWithArgmaxAndAmaxTies() {
        let t = Tensor([1, 5, 3, 7, 2, 7], shape: [2, 3])
        let (v, i) = t.max(axis: 1)
        XCTAssertEqual(v.scalars, [5, 7])
        XCTAssertEqual(i, [1, 0])
        XCTAssertEqual(t.argmax(axis: 0), [1, 0, 1])
        XCTAssertEqual(t.max().item, 7)
        let x = Tensor([1, 5, 3, 5], shape: [4], requiresGrad: true)
        x.max().backward()
        XCTAssertEqual(x.grad!.scalars, [0, 0.5, 0, 0.5])
        let y = rng.tensor([2, 3, 4])   // distinct values almost surely: no ties inside a step
        assertGradients([y]) { $0[0].max(axes: [1, 2]) }
        assertGradients([y]) { $0[0].max(axis: 2).values }
        assertGradients([y]) { $0[0].max(axes: [0], keepDim: true) }
    }

    func testLogSumExpSoftmaxLogSoftmax() {
        let t = Tensor([1, 2, 3, 1000, 1000, 1000], shape: [2, 3])
        assertClose(t.logSumExp(axes: [1]).scalars, [3.4076059, 1001.0986123], rtol: 1e-6)
        assertClose(t.softmax(axis: 1).scalars, [0.09003057, 0.24472847, 0.66524096, 1 / 3.0, 1 / 3.0, 1 / 3.0])
        assertClose(t.logSoftmax(axis: 1).scalars, [-2.4076059, -1.4076059, -0.4076059, -1.0986123, -1.0986123, -1.0986123])
        let x = rng.tensor([2, 3, 4], -2, 2)
        for axis in [0, 1, 2] {
            assertGradients([x]) { $0[0].softmax(axis: axis) }
            assertGradients([x]) { $0[0].logSoftmax(axis: axis) }
        }
        assertGradients([x]) { $0[0].logSumExp(axes: [0, 2]) }
        assertGradients([x]) { $0[0].logSumExp(axes: [1], keepDim: true) }
    }
    /// Last-axis softmax and log-softmax on rows shorter than, equal to and longer than one
    /// AVX-512 vector (1, 5, 16, 17, 40), with −∞ entries and large offsets, through every kernel
    /// this CPU can run (the AVX-512 row kernel, and the generic path), against Float64.
    func testSoftmaxRows() {
        let native = String(cString: finch_kernels_isa())
        defer { _ = finch_kernels_use(native) }
        for isa in ["avx512", "generic"] where finch_kernels_use(isa) == 1 {
            for r in [1, 5, 16, 17, 40] {
                var values = (0..<(3 * r)).map { _ in rng.uniform(-4, 4) }
                if r > 1 { values[r / 2] = -.infinity }  // row 0: one key masked out
                for k in r..<(2 * r) { values[k] += 500 }  // row 1: large logits
                let x = Tensor(values, shape: [3, r])
                var expected: [Float] = [], expectedLog: [Float] = []
                for row in 0..<3 {
                    let v = values[(row * r)..<((row + 1) * r)].map(Double.init)
                    let m = v.max()!
                    let sum = v.map { Foundation.exp($0 - m) }.reduce(0, +)
                    expected += v.map { Float(Foundation.exp($0 - m) / sum) }
                    expectedLog += v.map { Float($0 - m - Foundation.log(sum)) }
                }
                assertClose(x.softmax(axis: 1).scalars, expected, atol: 1e-6, rtol: 1e-5)
                // The masked key's log-probability is −∞ exactly; the rest are compared within rounding.
                let logs = x.logSoftmax(axis: 1).scalars
                let finite = expectedLog.indices.filter { expectedLog[$0].isFinite }
                if r > 1 { XCTAssertEqual(logs[r / 2], -.infinity, "\(isa), r = \(r)") }
                // x − log Σ eˣ with x ≈ 500 carries Float32's ulp at 500 (3e-5).
                assertClose(finite.map { logs[$0] }, finite.map { expectedLog[$0] }, atol: 1e-4, rtol: 1e-5)
            }
        }
    }
}
