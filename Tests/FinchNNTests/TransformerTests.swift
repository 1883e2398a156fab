import XCTest
import FinchTensor
@testable import FinchNN

/// Attention, Mlp and the transformer block against a plain Double restatement of timm's
/// formulas, plus central-difference gradients through each.
final class TransformerTests: XCTestCase {
    private func fill(_ module: Module, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for (_, p) in module.namedParameters() { p.assign(Tensor.uniform(p.shape, low: -0.5, high: 0.5, using: &rng)) }
    }

    /// softmax(q·kᵀ/√d)·v per head on the fused qkv projection, then the output projection.
    private func naiveAttention(_ a: Attention, _ x: Tensor) -> [Float] {
        let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        let h = a.numHeads, d = a.headDim
        let wq = a.qkv.weight, bq = a.qkv.bias!, wp = a.proj.weight, bp = a.proj.bias!
        var out = [Float]()
        for s in 0..<b {
            // qkv[t][j] for j in 0..<3c
            let qkv: [[Double]] = (0..<n).map { t in
                (0..<3 * c).map { j in (0..<c).reduce(Double(bq[j])) { $0 + Double(wq[j, $1]) * Double(x[s, t, $1]) } }
            }
            var heads = [[Double]](repeating: [Double](repeating: 0, count: c), count: n)
            for hh in 0..<h {
                for t in 0..<n {
                    let scores = (0..<n).map { u in
                        (0..<d).reduce(0.0) { $0 + qkv[t][hh * d + $1] * qkv[u][c + hh * d + $1] } / Double(d).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    for k in 0..<d {
                        heads[t][hh * d + k] = (0..<n).reduce(0.0) { $0 + e[$1] / z * qkv[$1][2 * c + hh * d + k] }
                    }
                }
            }
            for t in 0..<n {
                for o in 0..<c {
                    out.append(Float((0..<c).reduce(Double(bp[o])) { $0 + Double(wp[o, $1]) * heads[t][$1] }))
                }
            }
        }
        return out
    }

    func testAttentionMatchesTheFormula() {
        let attn = Attention(8, numHeads: 2, qkvBias: true)
        fill(attn, seed: 3)
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.uniform([2, 5, 8], low: -1, high: 1, using: &rng)
        let y = attn(x)
        XCTAssertEqual(y.shape, [2, 5, 8])
        assertClose(y.scalars, naiveAttention(attn, x), atol: 1e-5, rtol: 1e-4)
        XCTAssertEqual(attn.stateDict().map(\.name), ["qkv.weight", "qkv.bias", "proj.weight", "proj.bias"])
    }

    func testAttentionGradients() {
        let attn = Attention(4, numHeads: 2, qkvBias: true)
        fill(attn, seed: 5)
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.uniform([2, 3, 4], low: -1, high: 1, using: &rng).requiringGrad()
        let w = Tensor.uniform([2, 3, 4], low: 0.5, high: 1.5, using: &rng)
        assertGradientsNN([x, attn.qkv.weight, attn.qkv.bias!, attn.proj.weight]) { _ in (attn(x) * w).sum() }
    }

    func testTransformerBlockIsTwoPreNormResiduals() {
        let block = TransformerBlock(8, numHeads: 2, mlpRatio: 2, qkvBias: true, activation: .silu)
        fill(block, seed: 7)
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.uniform([1, 4, 8], low: -1, high: 1, using: &rng)
        let h = x + block.attn(block.norm1(x))
        let expected = h + block.mlp.fc2(block.mlp.fc1(block.norm2(h)).silu())
        assertClose(block(x).scalars, expected.scalars, atol: 1e-6)
        XCTAssertEqual(block.stateDict().map(\.name), [
            "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
            "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"])
        XCTAssertEqual(block.mlp.fc1.outFeatures, 16)
    }

    func testTransformerBlockGradients() {
        let block = TransformerBlock(4, numHeads: 2, mlpRatio: 2, qkvBias: true, activation: .silu)
        fill(block, seed: 9)
        var rng = RandomGenerator(seed: 10)
        let x = Tensor.uniform([1, 3, 4], low: -1, high: 1, using: &rng).requiringGrad()
        let w = Tensor.uniform([1, 3, 4], low: 0.5, high: 1.5, using: &rng)
        assertGradientsNN([x, block.norm1.weight, block.mlp.fc1.weight, block.mlp.fc2.bias!]) { _ in (block(x) * w).sum() }
    }

    func testLinearFoldsLeadingAxesWithoutChangingResults() {
        let lin = Linear(3, 2)
        fill(lin, seed: 11)
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.uniform([2, 4, 3], low: -1, high: 1, using: &rng)
        let rows = (0..<2).map { lin(x.narrowed(axis: 0, start: $0, length: 1).squeezed(axis: 0)) }
        assertClose(lin(x).scalars, Tensor.stack(rows).scalars, atol: 1e-6)
        let xg = x.requiringGrad()
        assertGradientsNN([xg, lin.weight]) { _ in (lin(xg) * lin(xg)).sum() }
    }
}
