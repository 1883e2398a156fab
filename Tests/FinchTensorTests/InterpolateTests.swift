import XCTest
@testable import FinchTensor

/// `interpolateBilinear` against PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`
/// and a Double-precision restatement of its half-pixel rule.
final class InterpolateTests: XCTestCase {
    /// Half-pixel source coordinate with negatives clamped, as PyTorch's linear modes.
    private func naive(_ x: Tensor, _ size: (Int, Int)) -> [Float] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func taps(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Double) {
            let src = max(Double(inSize) / Double(outSize) * (Double(o) + 0.5) - 0.5, 0)
            let i0 = min(Int(src), inSize - 1)
            return (i0, min(i0 + 1, inSize - 1), src - Double(i0))
        }
        var out = [Float]()
        for a in 0..<n {
            for b in 0..<c {
                for oy in 0..<size.0 {
                    let (y0, y1, ly) = taps(oy, h, size.0)
                    for ox in 0..<size.1 {
                        let (x0, x1, lx) = taps(ox, w, size.1)
                        let v = (1 - ly) * ((1 - lx) * Double(x[a, b, y0, x0]) + lx * Double(x[a, b, y0, x1]))
                            + ly * ((1 - lx) * Double(x[a, b, y1, x0]) + lx * Double(x[a, b, y1, x1]))
                        out.append(Float(v))
                    }
                }
            }
        }
        return out
    }

    func testMatchesPyTorch() {
        // x = (0.5·i − 2)·sin(0.5·i − 2), i = 0…17, shape [1, 2, 3, 3]; values printed by torch 2.13.
        let x = Tensor((0..<18).map { i -> Float in let v = Float(i) * 0.5 - 2; return v * sin(v) }, shape: [1, 2, 3, 3])
        let up: [Float] = [1.8185948, 1.6896539, 1.4962425, 1.1033795, 0.841471, 0.8317935, 0.7235125, 0.5610909,
                           0.5036596, 0.4653721, 0.4653721, 0.5036596, 0.5610909, 0.7235125, 0.8317935, 0.841471,
                           1.1033796, 1.4962425, 1.6896539, 1.8185948, 1.4961803, 1.0670521, 0.42336, -0.567301,
                           -1.2277412, -1.3309387, -1.8347807, -2.5905435, -3.1104424, -3.4570413, -3.3471832,
                           -3.3595052, -3.3779883, -2.8345654, -2.4722834, -3.8804717, -2.9988801, -1.6764929,
                           0.1683711, 1.3982799]
        let down: [Float] = [1.3484513, 0.798819, 0.798819, 1.3484511, 0.0784492, -1.7851464, -3.3396401, -0.7017317]
        assertClose(interpolateBilinear(x, size: (4, 5)).scalars, up, atol: 2e-6)
        assertClose(interpolateBilinear(x, size: (2, 2)).scalars, down, atol: 2e-6)
    }

    func testAgreesWithTheHalfPixelRuleAndHasExactGradients() {
        var rng = TestRNG(77)
        for (inSize, outSize) in [((3, 3), (4, 4)), ((4, 4), (3, 3)), ((2, 5), (5, 3)), ((3, 4), (6, 8)), ((5, 1), (2, 3))] {
            let x = rng.tensor([2, 2, inSize.0, inSize.1])
            let y = interpolateBilinear(x, size: outSize)
            XCTAssertEqual(y.shape, [2, 2, outSize.0, outSize.1])
            assertClose(y.scalars, naive(x, outSize), atol: 1e-6)
            assertGradients([x]) { t in interpolateBilinear(t[0], size: outSize) }
        }
        // Strided input reads the same values as its dense copy.
        let base = rng.tensor([2, 3, 3, 2])
        let view = base.permuted(0, 3, 2, 1)
        assertClose(interpolateBilinear(view, size: (4, 4)).scalars, interpolateBilinear(view.copy(), size: (4, 4)).scalars)
    }
}
