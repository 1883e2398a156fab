import Foundation
import XCTest
import CFinchKernels
@testable import FinchTensor

/// The fused attention kernel (SelfAttention.c, `fusedSelfAttention`) against softmax(q·kᵀ/√d)·v and
/// its gradient computed in Double from the same Float inputs, on shapes with partial vectors
/// (tokens and head widths not multiples of 8, fewer tokens than a block of rows); the same bits on
/// the avx2 and avx512 paths and on 1–3 threads; the composition where there is no kernel.
final class SelfAttentionTests: XCTestCase {
    private struct Case { let s, n, heads, d: Int }
    private let cases = [Case(s: 2, n: 13, heads: 2, d: 5), Case(s: 1, n: 20, heads: 4, d: 16),
                         Case(s: 3, n: 9, heads: 1, d: 20), Case(s: 1, n: 3, heads: 2, d: 24),
                         Case(s: 2, n: 1, heads: 3, d: 8)]

    private var vectorPaths: [KernelPath] { KernelPath.supported.filter { $0 >= .avx2 } }

    private func inputs(_ c: Case, seed: UInt64) -> (qkv: Tensor, g: Tensor) {
        var rng = RandomGenerator(seed: seed)
        let qkv = Tensor.uniform([c.s, c.n, 3 * c.heads * c.d], low: -2, high: 2, using: &rng)
        let g = Tensor.uniform([c.s, c.n, c.heads * c.d], low: -1, high: 1, using: &rng)
        return (qkv, g)
    }

    /// Output [S, N, heads·d] and the gradient of Σ g·output with respect to qkv, in Double.
    private func reference(_ c: Case, _ qkv: [Float], _ g: [Float]) -> (out: [Double], grad: [Double]) {
        let width = c.heads * c.d, row = 3 * width, scale = 1 / Double(c.d).squareRoot()
        var out = [Double](repeating: 0, count: c.s * c.n * width), grad = [Double](repeating: 0, count: qkv.count)
        for s in 0..<c.s {
            for h in 0..<c.heads {
                func x(_ i: Int, _ part: Int, _ t: Int) -> Double { Double(qkv[(s * c.n + i) * row + part * width + h * c.d + t]) }
                func go(_ i: Int, _ t: Int) -> Double { Double(g[(s * c.n + i) * width + h * c.d + t]) }
                var p = [[Double]](repeating: [Double](repeating: 0, count: c.n), count: c.n)
                for i in 0..<c.n {
                    for j in 0..<c.n { p[i][j] = (0..<c.d).reduce(0) { $0 + x(i, 0, $1) * x(j, 1, $1) } * scale }
                    let m = p[i].max()!
                    let e = p[i].map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                    p[i] = e.map { $0 / z }
                    for t in 0..<c.d { out[(s * c.n + i) * width + h * c.d + t] = (0..<c.n).reduce(0) { $0 + p[i][$1] * x($1, 2, t) } }
                }
                for i in 0..<c.n {
                    let dp = (0..<c.n).map { j in (0..<c.d).reduce(0) { $0 + go(i, $1) * x(j, 2, $1) } }
                    let dot = (0..<c.n).reduce(0) { $0 + dp[$1] * p[i][$1] }
                    let ds = (0..<c.n).map { p[i][$0] * (dp[$0] - dot) * scale }
                    for j in 0..<c.n {
                        for t in 0..<c.d {
                            grad[(s * c.n + i) * row + h * c.d + t] += ds[j] * x(j, 1, t)
                            grad[(s * c.n + j) * row + width + h * c.d + t] += ds[j] * x(i, 0, t)
                            grad[(s * c.n + j) * row + 2 * width + h * c.d + t] += p[i][j] * go(i, t)
                        }
                    }
                }
            }
        }
        return (out, grad)
    }

    private func fused(_ qkv: Tensor, _ g: Tensor, heads: Int) -> (out: [Float], grad: [Float]) {
        let x = qkv.detach().requiringGrad()
        guard let y = fusedSelfAttention(x, heads: heads) else {
            XCTFail("no fused kernel on \(KernelPath.active)")
            return ([], [])
        }
        (y * g).sum().backward()
        return (y.scalars, x.grad?.scalars ?? [])
    }

    func testMatchesDoubleOnEveryVectorPath() {
        XCTAssertFalse(vectorPaths.isEmpty, "this CPU has no AVX2 path: the kernel is untested")
        for path in vectorPaths {
            for (index, c) in cases.enumerated() {
                let (qkv, g) = inputs(c, seed: UInt64(10 + index))
                let want = reference(c, qkv.scalars, g.scalars)
                let got = KernelPath.with(path) { fused(qkv, g, heads: c.heads) }
                // Scores reach ±20 here (|q|, |k| ≤ 2, d ≤ 24), so a float ulp of a score moves a
                // weight by ~2e-6 of itself; a wrong index or a missed term moves results by O(0.1).
                XCTAssertEqual(got.out.count, want.out.count)
                XCTAssertEqual(got.grad.count, want.grad.count)
                let outError = zip(got.out, want.out).map { abs(Double($0) - $1) }.max() ?? 0
                let gradError = zip(got.grad, want.grad).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(outError, 1e-5, "\(path) \(c) forward")
                XCTAssertLessThan(gradError, 2e-5, "\(path) \(c) gradient")
            }
        }
    }

    func testSameBitsOnBothPathsAndAnyThreadCount() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        let c = Case(s: 3, n: 11, heads: 2, d: 12)
        let (qkv, g) = inputs(c, seed: 3)
        var results: [(out: [Float], grad: [Float])] = []
        for path in vectorPaths {
            for threads in 1...3 {
                Parallel.setThreads(threads)
                results.append(KernelPath.with(path) { fused(qkv, g, heads: c.heads) })
            }
        }
        XCTAssertFalse(results.isEmpty)
        for r in results.dropFirst() {
            XCTAssertEqual(r.out.map(\.bitPattern), results[0].out.map(\.bitPattern))
            XCTAssertEqual(r.grad.map(\.bitPattern), results[0].grad.map(\.bitPattern))
        }
    }

    /// Recording for backward changes nothing in the forward: the same bits with and without a gradient.
    func testInferenceMatchesTraining() {
        let c = Case(s: 2, n: 10, heads: 2, d: 6)
        let (qkv, _) = inputs(c, seed: 4)
        for path in vectorPaths {
            KernelPath.with(path) {
                let trained = fusedSelfAttention(qkv.detach().requiringGrad(), heads: c.heads)?.scalars
                let inferred = noGrad { fusedSelfAttention(qkv, heads: c.heads)?.scalars }
                XCTAssertNotNil(trained)
                XCTAssertEqual(trained?.map(\.bitPattern), inferred?.map(\.bitPattern), "\(path)")
            }
        }
    }

    /// No kernel on the generic path, and none while a tracer records (exporters lower the
    /// composition of matmul and softmax).
    func testGenericPathAndTracingHaveNoFusedForm() {
        let (qkv, _) = inputs(Case(s: 1, n: 4, heads: 1, d: 4), seed: 5)
        KernelPath.with(.generic) { XCTAssertNil(fusedSelfAttention(qkv, heads: 1)) }
        XCTAssertEqual(finch_attention_forward(nil, nil, 0, 0, 1, 1, 1, 1), KernelPath.active >= .avx2 ? 1 : 0)
        _ = OpTrace.run(OpTracer()) { XCTAssertNil(fusedSelfAttention(qkv, heads: 1)) }
    }
}
