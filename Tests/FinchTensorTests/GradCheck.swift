import XCTest
@testable import FinchTensor

/// Deterministic test data without depending on the library RNG under test.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1, requiresGrad: Bool = true) -> Tensor {
        Tensor((0..<Shape.count(shape)).map { _ in uniform(lo, hi) }, shape: shape, requiresGrad: requiresGrad)
    }
    /// Values in [lo, hi] kept at least `gap` away from every point in `kinks` (for non-smooth ops).
    mutating func tensorAvoiding(_ shape: [Int], _ lo: Float, _ hi: Float, kinks: [Float], gap: Float = 0.05) -> Tensor {
        let values = (0..<Shape.count(shape)).map { _ -> Float in
            var v: Float
            repeat { v = uniform(lo, hi) } while kinks.contains { abs(v - $0) < gap }
            return v
        }
        return Tensor(values, shape: shape, requiresGrad: true)
    }
}

/// Central finite differences against the tape's gradients.
///
/// The scalar probed is L = Σ f(x)·R with fixed random R, so every output element's gradient
/// path is exercised. Everything runs in Float32: with h = 1e-2 the truncation error is
/// O(h²·f''') ≈ 1e-4 and the rounding error of L is ≈ 1e-7·|L|/h ≈ 1e-4 for these small
/// tensors, so `atol + rtol·|g|` with 5e-3 each is met by correct gradients with a wide margin,
/// while a wrong formula (a missing factor, a wrong sign, a mis-routed broadcast) is off by O(1).
func assertGradients(_ inputs: [Tensor], h: Float = 1e-2, atol: Float = 5e-3, rtol: Float = 5e-3,
                     file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
    var rng = TestRNG(1234)
    let probe = f(inputs)
    let weights = Tensor((0..<probe.count).map { _ in rng.uniform(0.5, 1.5) }, shape: probe.shape)
    for x in inputs { x.grad = nil }
    (probe * weights).sum().backward()

    func lossValue() -> Double {
        noGrad {
            let out = f(inputs)
            return zip(out.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
    }

    for (n, x) in inputs.enumerated() where x.requiresGrad {
        guard let analytic = x.grad?.scalars else {
            XCTFail("input \(n) of shape \(x.shape) received no gradient", file: file, line: line)
            continue
        }
        XCTAssertEqual(analytic.count, x.count, file: file, line: line)
        precondition(x.isContiguous)
        let p = x.basePointer
        for i in 0..<x.count {
            let saved = p[i]
            p[i] = saved + h
            let up = lossValue()
            p[i] = saved - h
            let down = lossValue()
            p[i] = saved
            let numeric = Float((up - down) / Double(2 * h))
            let err = abs(numeric - analytic[i])
            if err > atol + rtol * abs(numeric) {
                XCTFail("input \(n) element \(i): analytic \(analytic[i]) vs numeric \(numeric)", file: file, line: line)
                return
            }
        }
    }
}

func assertClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "lengths differ", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= atol + rtol * abs(y)) {
        XCTFail("element \(i): \(x) vs \(y)", file: file, line: line)
        return
    }
}
