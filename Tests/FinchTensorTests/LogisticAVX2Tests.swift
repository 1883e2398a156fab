import XCTest
import CFinchKernels
@testable import FinchTensor

/// SiLU, sigmoid and SiLU's backward on the avx2 path build 1 + e⁻ˣ with an exponential of their own
/// (Exponential8.h, exp8_beside_one) that drops exp8's work where the sum cannot see it. Their results
/// must stay the bits of the formulas over exp8 itself, which `finch_exp_shifted` runs on this path:
/// x / (1 + e), 1 / (1 + e) and g·s·(1 + x·(1 − s)), in Float arithmetic without FMA as the kernels
/// do. Inputs: a stride through all 2³² bit patterns (NaNs, infinities, subnormals included) and every
/// Float where the shortcuts end: −x near −87 (the clamp), near EXP_HI (overflow to ∞, n = 128) and
/// around −17 (e⁻ˣ vanishing beside 1). The fused BatchNorm kernel must agree too.
final class LogisticAVX2Tests: XCTestCase {
    static func inputs() -> [Float] {
        var xs = stride(from: UInt32(0), to: UInt32.max - 4093, by: 4093).map { Float(bitPattern: $0) }
        for (lo, hi) in [(Float(86.5), Float(87.5)), (88.5, 88.9), (16.5, 17.5)] {
            var v = lo
            while v <= hi { xs.append(v); xs.append(-v); v = v.nextUp }
        }
        xs += [0, -0.0, .infinity, -.infinity, .nan, 1e-45, -1e-45, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        return xs
    }

    func testSiLUSigmoidAndBackwardKeepExp8Bits() {
        guard KernelPath.best >= .avx2 else {
            XCTFail("this test needs an AVX2 CPU (CI's machines have one)")
            return
        }
        let x = Self.inputs(), n = x.count
        var rng = TestRNG(2025)
        let g = (0..<n).map { _ in rng.uniform(-2, 2) }
        KernelPath.with(.avx2) {
            var e = [Float](repeating: 0, count: n)
            // 0 − x as the kernels negate: a NaN keeps its sign, which −x would flip.
            let negated = x.map { 0 - $0 }
            finch_exp_shifted(negated, &e, n, 0)
            var silu = [Float](repeating: 0, count: n), sigmoid = silu, backward = silu, fused = silu
            finch_silu(x, &silu, n)
            finch_sigmoid(x, &sigmoid, n)
            finch_silu_backward(g, x, &backward, n)
            XCTAssertEqual(finch_affine_activation(x, &fused, n, 0, 1, 0, 5), 1)
            var failures = 0
            for i in 0..<n where failures < 5 {
                let d = 1 + e[i], s = 1 / d
                let want: [(String, Float, Float)] = [
                    ("silu", silu[i], x[i] / d), ("sigmoid", sigmoid[i], s),
                    ("silu backward", backward[i], (g[i] * s) * (1 + x[i] * (1 - s))),
                    // The fused kernel's shift-only form adds 0, which turns −0 into +0.
                    ("BatchNorm+SiLU", fused[i], (x[i] + 0) / (1 + e[i])),
                ]
                for (name, got, expected) in want where got.bitPattern != expected.bitPattern {
                    if name == "BatchNorm+SiLU" && x[i] == 0 { continue }
                    XCTFail("\(name)(\(x[i]) [bits \(String(x[i].bitPattern, radix: 16))]) = \(got), exp8 form gives \(expected)")
                    failures += 1
                }
            }
        }
    }
}
