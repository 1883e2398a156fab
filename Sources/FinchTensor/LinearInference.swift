/// x·Wᵀ + b for x [M, K] and W [N, K], unrecorded: the bias is written first and the GEMM adds
/// the product onto it (β = 1), so there is no second [M, N] tensor and no broadcast pass. For
/// inference only (no gradient, no trace); equals `x.matmul(W.transposed()) + b` up to rounding
/// (the bias joins the sum first instead of last).
public func linearInference(_ x: Tensor, weight: Tensor, bias: Tensor) -> Tensor {
    precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1] && bias.shape == [weight.shape[0]],
                 "linearInference: input \(x.shape), weight \(weight.shape), bias \(bias.shape)")
    let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
    let a = Gemm.operand(x), w = Gemm.operand(weight), b = bias.contiguous()
    let out = Tensor(uninitializedShape: [m, n])
    let dst = out.basePointer
    // The bias row, then copies of everything filled so far: log₂(m) large copies instead of m
    // small ones (rows are 64–288 floats in MobileViT's blocks).
    dst.update(from: b.basePointer, count: n)
    var filled = Swift.min(1, m)
    while filled < m {
        let count = Swift.min(filled, m - filled)
        (dst + filled * n).update(from: dst, count: count * n)
        filled += count
    }
    // W [N, K] read as Wᵀ: flip the operand's own transpose flag.
    Gemm.sgemm(transA: a.transposed, transB: !w.transposed, m: m, n: n, k: k, a: a.tensor.basePointer, lda: a.ld,
               b: w.tensor.basePointer, ldb: w.ld, beta: 1, c: dst, ldc: n)
    return out
}
