import XCTest
import CFinchKernels
@testable import FinchTensor

/// The AVX2 softmax rows (SoftmaxRowsAVX2.c) against the loop the avx2 path ran before it, rebuilt
/// here from the same parts (finch_exp_shifted on the avx2 path, ReduceKernels.sumContiguous): equal
/// bit for bit, for rows shorter than a vector, with a partial last vector, longer than one block of
/// the sum (256), and with −∞, NaN and large keys.
final class SoftmaxRowsAVX2Tests: XCTestCase {
    /// The pre-kernel Swift loop for one contiguous row.
    private func reference(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ r: Int, log: Bool) {
        var m: Float = -.infinity
        for k in 0..<r { m = Swift.max(m, x[k]) }
        if !m.isFinite { m = 0 }
        finch_exp_shifted(x, y, r, m)
        let s = ReduceKernels.sumContiguous(y, r)
        if log {
            let ls = logf(s) + m
            for k in 0..<r { y[k] = x[k] - ls }
        } else {
            let inv = 1 / s
            for k in 0..<r { y[k] *= inv }
        }
    }

    private func rows(_ r: Int, count: Int) -> [Float] {
        var rng = RandomGenerator(seed: UInt64(r))
        var x = (0..<(r * count)).map { _ in Float(Double(rng.next() % 20001) / 1000 - 10) }
        // Row 1: one key far above the rest; row 2: −∞ keys; row 3: all −∞; row 4: a NaN.
        if count > 4 {
            x[r] = 85
            for k in stride(from: 0, to: r, by: 2) { x[2 * r + k] = -.infinity }
            for k in 0..<r { x[3 * r + k] = -.infinity }
            x[4 * r + r / 2] = .nan
        }
        return x
    }

    func testAVX2RowsEqualTheRowLoopBitForBit() {
        guard KernelPath.best >= .avx2 else {
            XCTAssertEqual(finch_softmax_rows(nil, nil, 0, 0, 0), 0, "no AVX2: no kernel")
            return
        }
        KernelPath.with(.avx2) {
            for r in [1, 3, 4, 7, 8, 9, 16, 17, 49, 64, 196, 256, 300, 530] {
                let count = 6
                let x = rows(r, count: count)
                for log in [false, true] {
                    var got = [Float](repeating: -1, count: x.count + 3), want = got
                    x.withUnsafeBufferPointer { xp in
                        got.withUnsafeMutableBufferPointer {
                            XCTAssertEqual(finch_softmax_rows(xp.baseAddress!, $0.baseAddress!, count, r, log ? 1 : 0), 1)
                        }
                        want.withUnsafeMutableBufferPointer { wp in
                            for row in 0..<count { reference(xp.baseAddress! + row * r, wp.baseAddress! + row * r, r, log: log) }
                        }
                    }
                    if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
                        XCTFail("r \(r) log \(log): [\(i)] \(got[i]) against \(want[i])")
                    }
                    // Nothing past the rows is written.
                    XCTAssertEqual(Array(got.suffix(3)), [-1, -1, -1], "r \(r)")
                }
            }
        }
    }

    /// The generic path keeps Swift's loop (the kernel declines), and softmax through the op agrees
    /// on both paths within the exponentials' few ulps.
    func testGenericPathDeclinesAndPathsAgree() {
        KernelPath.with(.generic) {
            XCTAssertEqual(finch_softmax_rows(nil, nil, 0, 0, 0), 0)
        }
        guard KernelPath.best >= .avx2 else { return }
        var rng = RandomGenerator(seed: 7)
        let x = Tensor.normal([3, 4, 49, 49], using: &rng) * 4
        let generic = KernelPath.with(.generic) { x.softmax(axis: -1).scalars }
        let avx2 = KernelPath.with(.avx2) { x.softmax(axis: -1).scalars }
        for i in generic.indices {
            XCTAssertEqual(avx2[i], generic[i], accuracy: 2e-6 * generic[i] + 1e-37, "[\(i)]")
        }
    }
}
