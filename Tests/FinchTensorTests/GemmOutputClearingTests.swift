import XCTest
@testable import FinchTensor

/// Gemm.sgemm with beta = 0 when it clears C itself and asks OpenBLAS for C += A·B (what it does on
/// Haswell's kernels, where OpenBLAS's own clearing pass is slow): C's rows are cleared whatever they
/// held (NaN here), the columns past n in each row of ldc are left alone, split and unsplit products
/// agree with Float64 within the GEMM's rounding, and on Zen/Haswell cores equal OpenBLAS's beta = 0
/// bit for bit.
final class GemmOutputClearingTests: XCTestCase {
    private func product(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, split: Bool, clears: Bool,
                         a: [Float], b: [Float], ldc: Int) -> [Float] {
        var c = [Float](repeating: .nan, count: m * ldc)
        let saved = Gemm.clearsOutputItself
        Gemm.clearsOutputItself = clears
        defer { Gemm.clearsOutputItself = saved }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    Gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: transA ? m : k,
                               b: bp.baseAddress!, ldb: transB ? k : n, c: cp.baseAddress!, ldc: ldc, split: split)
                }
            }
        }
        return c
    }

    func testClearingItselfGivesTheProduct() {
        let bitwise = ["haswell", "zen"].contains(Parallel.blasCore.lowercased())
        // Attention's per-head shapes, a wide Linear-like product that Gemm splits over threads, odd sizes.
        for (m, n, k) in [(64, 64, 16), (64, 16, 64), (4, 4, 24), (49, 49, 20), (700, 96, 40), (37, 300, 33)] {
            for (transA, transB) in [(false, false), (false, true), (true, false)] {
                var rng = RandomGenerator(seed: UInt64(m * 1000 + n + k))
                let a = Tensor.normal([m * k], using: &rng).scalars, b = Tensor.normal([k * n], using: &rng).scalars
                let ldc = n + 3
                for split in [false, true] {
                    let got = product(m: m, n: n, k: k, transA: transA, transB: transB, split: split, clears: true,
                                      a: a, b: b, ldc: ldc)
                    let label = "\(m)×\(n)×\(k) transA \(transA) transB \(transB) split \(split)"
                    for i in 0..<m {
                        for j in 0..<ldc {
                            let v = got[i * ldc + j]
                            if j >= n { XCTAssertTrue(v.isNaN, "\(label): [\(i), \(j)] past n was written"); continue }
                            var exact = 0.0, magnitude = 0.0
                            for p in 0..<k {
                                let x = Double(transA ? a[p * m + i] : a[i * k + p]), y = Double(transB ? b[j * k + p] : b[p * n + j])
                                exact += x * y
                                magnitude += abs(x * y)
                            }
                            // Float accumulation of k products: within k·ε of the sum of magnitudes.
                            XCTAssertEqual(Double(v), exact, accuracy: Double(k) * 6e-8 * magnitude + 1e-30, "\(label): [\(i), \(j)]")
                        }
                    }
                    if bitwise {
                        let want = product(m: m, n: n, k: k, transA: transA, transB: transB, split: split, clears: false,
                                           a: a, b: b, ldc: ldc)
                        if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern && !(got[$0].isNaN && want[$0].isNaN) }) {
                            XCTFail("\(label): [\(i)] \(got[i]) against OpenBLAS's beta = 0 \(want[i])")
                        }
                    }
                }
            }
        }
    }
}
