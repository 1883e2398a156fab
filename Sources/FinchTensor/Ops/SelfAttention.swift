import CFinchKernels

/// Multi-head self-attention's core, softmax(q·kᵀ/√d)·v for every sequence and head, as one op on
/// a fused projection's output `qkv` [S, N, 3·heads·d] (timm's layout: q, k, v, each heads × d):
/// the heads side by side, [S, N, heads·d], the input of attention's output projection.
///
/// One kernel (SelfAttention.c) instead of `(q·scale).matmul(kᵀ).softmax().matmul(v)`: no GEMM
/// packing per head, no attention map in memory (backward rebuilds the weights it needs), and
/// backward writes q, k and v's gradients straight into `qkv`'s layout. Its sums run in another order than OpenBLAS's, so the result
/// differs from the composition by rounding; it is the same on the avx2 and avx512 paths and on
/// any number of threads. Nil on the generic path and while a tracer runs (export formats see the
/// composition), so the caller composes it there.
public func fusedSelfAttention(_ qkv: Tensor, heads: Int) -> Tensor? {
    guard KernelPath.active >= .avx2, !OpTrace.isTracing else { return nil }
    ensure(qkv.rank == 3 && heads > 0 && qkv.shape[2] % (3 * heads) == 0,
           "fusedSelfAttention: qkv of shape \(qkv.shape) is not [S, N, 3·\(heads)·d]")
    let (s, n, c) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
    let d = c / heads
    let scale = 1 / Float(d).squareRoot()
    let source = qkv.isContiguous ? qkv.detach() : qkv.copy()
    let out = Tensor(uninitializedShape: [s, n, c])
    let pairs = s * heads
    guard pairs > 0 && n > 0 && d > 0 else {
        out.storage.pointer.initialize(repeating: 0, count: out.count)
        return out
    }
    let src = source.basePointer, dst = out.basePointer
    Parallel.forEach(pairs) { range in
        let status = finch_attention_forward(src, dst, range.lowerBound, range.count, n, heads, d, scale)
        ensure(status == 1, "fusedSelfAttention: the kernel refused (status \(status))")
    }
    // Backward keeps qkv alone and rebuilds the weights from it (SelfAttention.c says why).
    return record(out, "self_attention", [qkv], nil) { g in
        let gc = g.isContiguous ? g : g.copy()
        let grad = Tensor(uninitializedShape: source.shape)
        let gp = gc.basePointer, gq = grad.basePointer, xs = source.basePointer
        withExtendedLifetime((gc, source)) {
            Parallel.forEach(pairs) { range in
                let status = finch_attention_backward(xs, gp, gq, range.lowerBound, range.count, n, heads, d, scale)
                ensure(status == 1, "fusedSelfAttention: the backward kernel refused (status \(status))")
            }
        }
        return [grad]
    }
}
