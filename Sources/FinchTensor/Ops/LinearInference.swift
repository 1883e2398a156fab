/// act(x·Wᵀ + b) for x [M, K] and W [N, K], unrecorded, in blocks of rows split over the threads:
/// each block's rows of the output are filled with the bias, the GEMM adds the product onto them
/// (β = 1) and the activation runs over them while they are still in cache. There is no second
/// [M, N] tensor, no broadcast pass and no separate activation pass over memory. For inference
/// only (no gradient, no trace); equals `act(x.matmul(W.transposed()) + b)` up to rounding (the
/// bias joins the sum first instead of last).
public func linearInference(_ x: Tensor, weight: Tensor, bias: Tensor,
                            activation: FusedActivation = .identity) -> Tensor {
    ensure(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1] && bias.shape == [weight.shape[0]],
                 "linearInference: input \(x.shape), weight \(weight.shape), bias \(bias.shape)")
    let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
    let a = Gemm.operand(x), w = Gemm.operand(weight), b = bias.contiguous()
    let out = Tensor(uninitializedShape: [m, n])
    guard m > 0 && n > 0 else { return out }
    let dst = out.basePointer, ap = a.tensor.basePointer, wp = w.tensor.basePointer, bp = b.basePointer
    let rows = LinearInference.blockRows(m: m, n: n)
    withExtendedLifetime((a, w, b)) {
        Parallel.forEach((m + rows - 1) / rows) { blocks in
            for block in blocks {
                let r0 = block * rows, count = Swift.min(rows, m - r0), c = dst + r0 * n
                for r in 0..<count { (c + r * n).update(from: bp, count: n) }
                // Row r0 of A: r0 rows down, or r0 columns along when x is read transposed.
                let a0 = a.transposed ? ap + r0 : ap + r0 * a.ld
                // W [N, K] read as Wᵀ: flip the operand's own transpose flag.
                Gemm.sgemm(transA: a.transposed, transB: !w.transposed, m: count, n: n, k: k, a: a0, lda: a.ld,
                           b: wp, ldb: w.ld, beta: 1, c: c, ldc: n, split: false)
                if activation != .identity {
                    Kernels.affineActivation(c, c, count * n, mean: 0, scale: 1, shift: 0, activation)
                }
            }
        }
    }
    return out
}

enum LinearInference {
    /// Output floats per block: 256 KB, so a block's rows stay in L2 from the bias fill through
    /// the GEMM to the activation.
    static var blockFloats = 1 << 16

    /// Rows per block: within `blockFloats`, at least 16 (thinner GEMMs lose more to packing than
    /// cache saves), and small enough that every thread gets a block.
    static func blockRows(m: Int, n: Int) -> Int {
        let fit = Swift.max(16, blockFloats / Swift.max(n, 1))
        return Swift.max(1, Swift.min(fit, (m + Parallel.threads - 1) / Parallel.threads))
    }
}
