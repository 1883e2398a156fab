import XCTest
import CFinchKernels
@testable import FinchTensor

/// The AVX2 small-plane 1×1 convolution (SmallPlanePointwiseAVX2.c) against the AVX-512 kernel bit
/// for bit where the CPU has both (one FMA per input channel in order, from the bias), and against
/// Float64 within the FMA chain's rounding on any AVX2 CPU. Planes of 16 (4×4: two vectors), 49
/// (7×7: a partial vector), 64 (8×8: two blocks of four vectors), 196 (14×14: whole blocks, then a
/// last one with a partial vector and three past the plane) and 225 (15×15) pixels; output
/// channel counts that leave partial blocks for every block size; no bias. Nothing past the output
/// is written (NaN canaries).
final class SmallPlanePointwiseAVX2Tests: XCTestCase {
    private func run(n: Int, c: Int, cout: Int, hw: Int, x: [Float], w: [Float], b: [Float]?) -> [Float]? {
        var out = [Float](repeating: .nan, count: n * cout * hw + 8)
        let units = finch_pointwise_small_units(n, cout, hw)
        var packed = [Float](repeating: 0, count: 16 * c)
        let took: Int32 = out.withUnsafeMutableBufferPointer { o in
            packed.withUnsafeMutableBufferPointer { p in
                // Two calls over split unit ranges, as two threads would make them.
                let half = units / 2
                return finch_pointwise_small(x, w, b, o.baseAddress!, n, c, cout, hw, 0, half, p.baseAddress!)
                    & finch_pointwise_small(x, w, b, o.baseAddress!, n, c, cout, hw, half, units, p.baseAddress!)
            }
        }
        return took == 1 ? out : nil
    }

    func testAVX2AgainstAVX512AndFloat64() {
        guard KernelPath.best >= .avx2 else { return }
        for (k, (n, c, cout, hw, bias)) in [(2, 20, 17, 16, true), (1, 33, 13, 49, true), (2, 16, 7, 64, false),
                                            (1, 8, 25, 225, true), (3, 5, 3, 36, true), (2, 24, 14, 196, true)].enumerated() {
            var rng = RandomGenerator(seed: 40 + UInt64(k))
            let x = Tensor.normal([n * c * hw], using: &rng).scalars
            let w = Tensor.normal([cout * c], using: &rng).scalars
            let b = bias ? Tensor.normal([cout], using: &rng).scalars : nil
            guard let got = KernelPath.with(.avx2, { run(n: n, c: c, cout: cout, hw: hw, x: x, w: w, b: b) }) else {
                XCTFail("case \(k): the avx2 path declined")
                continue
            }
            XCTAssertTrue(got[(n * cout * hw)...].allSatisfy(\.isNaN), "case \(k): written past the output")
            for s in 0..<n {
                for co in 0..<cout {
                    for p in 0..<hw {
                        var exact = Double(b?[co] ?? 0), magnitude = abs(exact)
                        for ci in 0..<c {
                            let t = Double(w[co * c + ci]) * Double(x[(s * c + ci) * hw + p])
                            exact += t
                            magnitude += abs(t)
                        }
                        XCTAssertEqual(Double(got[(s * cout + co) * hw + p]), exact, accuracy: Double(c + 1) * 6e-8 * magnitude,
                                       "case \(k) [\(s), \(co), \(p)]")
                    }
                }
            }
            guard KernelPath.best >= .avx512 else { continue }
            guard let want = KernelPath.with(.avx512, { run(n: n, c: c, cout: cout, hw: hw, x: x, w: w, b: b) }) else {
                XCTFail("case \(k): the avx512 path declined")
                continue
            }
            if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern && !(got[$0].isNaN && want[$0].isNaN) }) {
                XCTFail("case \(k): [\(i)] avx2 \(got[i]) against avx512 \(want[i])")
            }
        }
    }

    func testGenericPathDeclines() {
        KernelPath.with(.generic) {
            XCTAssertEqual(finch_pointwise_small(nil, nil, nil, nil, 0, 0, 0, 0, 0, 0, nil), 0)
        }
    }
}
