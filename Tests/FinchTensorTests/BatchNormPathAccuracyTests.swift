import XCTest
@testable import FinchTensor

/// Training-mode BatchNorm on each kernel path against a float64 reference (issue 27), not against
/// another float32 path: KernelPathTests shows that paths agree, this shows that none is the less
/// accurate one. No path rounds a product before adding it (FMA on AVX-512, Double on AVX2 and
/// generic); the old generic/AVX2 fallback, a Float dot product over eight lanes, left
/// mobilenetv3_small's SE gradients 4× PyTorch float32's distance to float64.
///
/// Errors are measured relative to the size of what each output sums, with ε = 2⁻²⁴:
/// - dβ = Σg over K values: |Δ| ÷ Σ|g|.
/// - dγ = Σg·x̂: |Δ| ÷ Σ|g·x̂|.
/// - dx = γ·invstd·(g − mean g − x̂·mean(g·x̂)): |Δ| ÷ γ·invstd·(|g| + |mean g| + |x̂·mean(g·x̂)|).
/// Bounds: dβ and dγ 6ε (invstd's own error, the product by it and the rounding of the result to
/// Float take about 3ε, the plane sums themselves get the rest); dx 11ε (the same plus the Float
/// arithmetic of its formula). Measured, seed 2707: generic dβ 0.14ε, dγ 3.7ε, dx 7.6ε; Float lanes with FMA
/// (tried for AVX2) 0.14ε, 3.6ε, 7.4ε; the old fallback 2.0ε, 8.1ε, 14.7ε on both paths.
final class BatchNormPathAccuracyTests: XCTestCase {
    static let eps = 1.0 / Double(1 << 24)

    struct Errors { var dbeta = 0.0, dgamma = 0.0, dx = 0.0 }

    /// Relative errors of one path's training-mode BatchNorm gradients against float64.
    func errors(on path: KernelPath, x xs: [Float], g gs: [Float], gamma: [Float], shape: [Int]) -> Errors {
        let (n, c, plane) = (shape[0], shape[1], shape[2] * shape[3])
        let (dx, dw, db) = KernelPath.with(path) { () -> ([Float], [Float], [Float]) in
            let x = Tensor(xs, shape: shape, requiresGrad: true)
            let w = Tensor(gamma, shape: [c], requiresGrad: true), b = Tensor([Float](repeating: 0, count: c), shape: [c], requiresGrad: true)
            let y = batchNorm2d(x, weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
            (y * Tensor(gs, shape: shape)).sum().backward()
            return (x.grad!.scalars, w.grad!.scalars, b.grad!.scalars)
        }
        var e = Errors()
        let k = Double(n * plane)
        for ch in 0..<c {
            let idx = (0..<n).flatMap { i in (0..<plane).map { (i * c + ch) * plane + $0 } }
            let mu = idx.reduce(0.0) { $0 + Double(xs[$1]) } / k
            let variance = idx.reduce(0.0) { $0 + (Double(xs[$1]) - mu) * (Double(xs[$1]) - mu) } / k
            let istd = 1 / (variance + 1e-5).squareRoot()
            let xhat = { (t: Int) in (Double(xs[t]) - mu) * istd }
            let sumG = idx.reduce(0.0) { $0 + Double(gs[$1]) }
            let sumGX = idx.reduce(0.0) { $0 + Double(gs[$1]) * xhat($1) }
            let absG = idx.reduce(0.0) { $0 + abs(Double(gs[$1])) }
            let absGX = idx.reduce(0.0) { $0 + abs(Double(gs[$1]) * xhat($1)) }
            e.dbeta = max(e.dbeta, abs(Double(db[ch]) - sumG) / absG)
            e.dgamma = max(e.dgamma, abs(Double(dw[ch]) - sumGX) / absGX)
            let a = Double(gamma[ch]) * istd, meanG = sumG / k, meanGX = sumGX / k
            for t in idx {
                let exact = a * (Double(gs[t]) - meanG - xhat(t) * meanGX)
                let scale = a * (abs(Double(gs[t])) + abs(meanG) + abs(xhat(t) * meanGX))
                e.dx = max(e.dx, abs(Double(dx[t]) - exact) / scale)
            }
        }
        return e
    }

    func testTrainingGradientsAgainstFloat64OnGenericAndAVX2() {
        // Planes of 96×96 (K = 2·9216 values a channel, as at 192 px after a stride-2 stem), an
        // input far from zero and an upstream gradient with a common sign, so that Σg and Σg·x̂
        // accumulate the way a long Float sum loses the most.
        let shape = [2, 3, 96, 96]
        var rng = TestRNG(2707)
        let xs = rng.tensor(shape, 2, 4, requiresGrad: false).scalars
        let gs = rng.tensor(shape, -0.2, 1, requiresGrad: false).scalars
        let gamma: [Float] = [0.7, 1.3, 2]
        for path in KernelPath.supported where path <= .avx2 {
            let e = errors(on: path, x: xs, g: gs, gamma: gamma, shape: shape)
            XCTAssertLessThanOrEqual(e.dbeta, 6 * Self.eps, "dβ on \(path)")
            XCTAssertLessThanOrEqual(e.dgamma, 6 * Self.eps, "dγ on \(path)")
            XCTAssertLessThanOrEqual(e.dx, 11 * Self.eps, "dx on \(path)")
        }
    }
}
