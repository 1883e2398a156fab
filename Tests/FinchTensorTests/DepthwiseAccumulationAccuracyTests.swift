import XCTest
@testable import FinchTensor

/// The depthwise weight gradient on each kernel path and both kernels (channel tiles for planes up to
/// 16 wide, packed rows above) against a float64 reference (issue 27). One weight's gradient sums
/// N·Ho·Wo products; the kernels used to add them in one Float chain per weight (channel tiles) or per
/// output column (rows), whose error grows with N·Ho·Wo. Now Float partials stay short (about sixteen
/// outputs, or one sample's rows) and samples are added in Double (Benchmarks/AccumulationAccuracy.md).
///
/// Inputs far from zero with one sign and an upstream gradient mostly of one sign make the running sum
/// grow steadily, the way a long Float chain loses the most. The error of each weight is measured
/// relative to Σ|dy·x| over its products, in ε = 2⁻²⁴.
final class DepthwiseAccumulationAccuracyTests: XCTestCase {
    static let eps = 1.0 / Double(1 << 24)

    /// Worst relative error of dW over channels and taps, in ε, for a 3×3 depthwise convolution
    /// (padding 1, stride 1) of x [n, c, h, w].
    func weightGradientError(n: Int, c: Int, h: Int, w: Int, seed: UInt64) -> Double {
        var rng = TestRNG(seed)
        let shape = [n, c, h, w]
        let xs = rng.tensor(shape, 2, 4, requiresGrad: false).scalars
        let gs = rng.tensor(shape, -0.2, 1, requiresGrad: false).scalars
        let ws = rng.tensor([c, 1, 3, 3], -1, 1, requiresGrad: false).scalars
        let x = Tensor(xs, shape: shape), weight = Tensor(ws, shape: [c, 1, 3, 3], requiresGrad: true)
        let y = conv2d(x, weight: weight, padding: Padding2d(1, 1), groups: c)
        (y * Tensor(gs, shape: shape)).sum().backward()
        let dw = weight.grad!.scalars
        var worst = 0.0
        for ch in 0..<c {
            for i in 0..<3 {
                for j in 0..<3 {
                    var exact = 0.0, magnitude = 0.0
                    for s in 0..<n {
                        for oh in 0..<h {
                            let ih = oh - 1 + i
                            guard ih >= 0 && ih < h else { continue }
                            for ow in 0..<w {
                                let iw = ow - 1 + j
                                guard iw >= 0 && iw < w else { continue }
                                let term = Double(gs[((s * c + ch) * h + oh) * w + ow]) * Double(xs[((s * c + ch) * h + ih) * w + iw])
                                exact += term
                                magnitude += abs(term)
                            }
                        }
                    }
                    worst = max(worst, abs(Double(dw[ch * 9 + i * 3 + j]) - exact) / magnitude / Self.eps)
                }
            }
        }
        return worst
    }

    /// 16×16 planes, batch 24 (6144 products per weight): the channel-tile kernel. Measured, seed 27:
    /// 1.0ε on every path; one Float chain per weight, as before, 44ε.
    func testChannelTilesWeightGradientAgainstFloat64() {
        for path in KernelPath.supported {
            let e = KernelPath.with(path) { weightGradientError(n: 24, c: 9, h: 16, w: 16, seed: 27) }
            XCTAssertLessThanOrEqual(e, 3, "channel tiles, \(path)")
        }
    }

    /// 64×17 planes, batch 48 (one Float lane per output column summed 3072 products before): the
    /// packed-rows kernel (C on AVX2 and AVX-512, Swift on generic). The 17 columns' lanes are added
    /// at the end, which already averages their errors, hence the smaller gap. Measured, seed 28:
    /// 0.68ε on every path; lanes over every sample's rows, as before, 5.2ε.
    func testPackedRowsWeightGradientAgainstFloat64() {
        XCTAssertLessThan(DepthwiseConvChannelTiles.maxOutputWidth, 17, "17-wide planes take the packed rows")
        for path in KernelPath.supported {
            let e = KernelPath.with(path) { weightGradientError(n: 48, c: 2, h: 64, w: 17, seed: 28) }
            XCTAssertLessThanOrEqual(e, 2, "packed rows, \(path)")
        }
    }
}
