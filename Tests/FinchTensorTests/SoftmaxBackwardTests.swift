import XCTest
@testable import FinchTensor

/// Softmax's fused row backward (SoftmaxKernels.backwardRows) against the expression it replaces,
/// y·(g − Σ(g·y)), computed with the tensor ops: the same bits for short rows, rows with a partial
/// vector and rows longer than the sum's 256-value blocks, on every kernel path; and nil (the
/// expression runs) where the axis is not the last or an operand is strided.
final class SoftmaxBackwardTests: XCTestCase {
    func testRowsEqualTheUnfusedExpressionBitForBit() {
        for path in KernelPath.supported {
            KernelPath.with(path) {
                for (rows, r) in [(5, 1), (7, 4), (3, 9), (64, 16), (9, 49), (4, 196), (2, 300), (1, 600)] {
                    var rng = RandomGenerator(seed: UInt64(r))
                    let y = (Tensor.normal([rows, r], using: &rng) * 3).softmax(axis: -1)
                    let g = Tensor.normal([rows, r], using: &rng)
                    guard let fused = SoftmaxKernels.backwardRows(g, y, axis: 1) else {
                        return XCTFail("\(path) \(rows)×\(r): declined a contiguous last axis")
                    }
                    let want = (y * (g - (g * y).sum(axes: [1], keepDim: true))).scalars
                    let got = fused.scalars
                    XCTAssertEqual(fused.shape, [rows, r])
                    if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
                        XCTFail("\(path) \(rows)×\(r): [\(i)] \(got[i]) against \(want[i])")
                    }
                }
            }
        }
    }

    func testOtherLayoutsDecline() {
        var rng = RandomGenerator(seed: 3)
        let y = Tensor.normal([4, 6], using: &rng).softmax(axis: 0)
        let g = Tensor.normal([4, 6], using: &rng)
        XCTAssertNil(SoftmaxKernels.backwardRows(g, y, axis: 0))
        let strided = Tensor.normal([6, 4], using: &rng).transposed()
        XCTAssertNil(SoftmaxKernels.backwardRows(strided, y, axis: 1))
        // Through the op: the gradient of a softmax over the first axis still matches the expression.
        let x = Tensor.normal([4, 6], using: &rng)
        x.requiresGrad = true
        let s = x.softmax(axis: 0)
        (s * g).sum().backward()
        let sd = s.detach()
        let want = (sd * (g - (g * sd).sum(axes: [0], keepDim: true))).scalars
        XCTAssertEqual(x.grad?.scalars ?? [], want)
    }
}
