import COpenBLAS

/// Matrix products through `cblas_sgemm`. Transposed views are passed as BLAS transpose
/// flags with their leading dimension, so `a.transposed()` costs no copy.
enum Gemm {
    struct Operand {
        let tensor: Tensor      // keeps the memory alive
        let transposed: Bool
        let ld: Int
    }

    /// How BLAS can read the last two axes of `t` in place, copying only when the layout is neither.
    static func operand(_ t: Tensor) -> Operand {
        let r = t.shape[t.rank - 2], c = t.shape[t.rank - 1]
        let s0 = t.strides[t.rank - 2], s1 = t.strides[t.rank - 1]
        if (s1 == 1 || c == 1) && s0 >= Swift.max(1, c) { return Operand(tensor: t, transposed: false, ld: Swift.max(s0, 1)) }
        if (s0 == 1 || r == 1) && s1 >= Swift.max(1, r) { return Operand(tensor: t, transposed: true, ld: Swift.max(s1, 1)) }
        let c2 = t.copy()
        return Operand(tensor: c2, transposed: false, ld: Swift.max(c, 1))
    }

    /// C[M,N] = A[M,K]·B[K,N] for raw row-major pointers (used by convolution kernels too).
    /// `split: false` keeps the product on the calling thread (for callers that already run one
    /// piece of work per thread).
    @inline(__always)
    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true) {
        Parallel.configure()
        // OpenBLAS clears C for beta = 0 in a pass of its own before the kernel adds A·B to it; with
        // Haswell's kernels (Zen, Haswell) that pass runs several times slower than clearing the rows
        // here and asking for C += A·B, and the kernel's additions are the same, so are the bits.
        let clears = beta == 0 && clearsOutputItself
        let beta = clears ? 1 : beta
        // One block per thread, not Parallel's few parts per thread: every block repacks the shared
        // operand (ResNet18 evaluation, 2 threads, medians of 8 alternating runs: 123.0 img/s with
        // four blocks per thread, 138.6 with one).
        let parts = split && Parallel.gemmSplit ? Swift.min(Parallel.threads, m * n * k / splitMinimumWork + 1) : 1
        if parts <= 1 {
            if clears { clear(c, rows: 0..<m, columns: 0..<n, ldc: ldc) }
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        // OpenBLAS runs single-threaded here and the product is split into column (or row) blocks
        // on Finch's own threads: OpenBLAS's idle workers otherwise spin in sched_yield between the
        // many small GEMMs of a mobile network, competing with Finch's loops for the two cores.
        let byColumns = n >= m
        Parallel.forEach(parts) { range in
            for p in range {
                if byColumns {
                    let lo = n * p / parts, hi = n * (p + 1) / parts
                    guard lo < hi else { continue }
                    if clears { clear(c, rows: 0..<m, columns: lo..<hi, ldc: ldc) }
                    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda),
                                transB ? b + lo * ldb : b + lo, Int32(ldb), beta, c + lo, Int32(ldc))
                } else {
                    let lo = m * p / parts, hi = m * (p + 1) / parts
                    guard lo < hi else { continue }
                    if clears { clear(c, rows: lo..<hi, columns: 0..<n, ldc: ldc) }
                    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(hi - lo), Int32(n), Int32(k), alpha, transA ? a + lo : a + lo * lda, Int32(lda),
                                b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
                }
            }
        }
    }

    /// Whether `sgemm` clears C itself for beta = 0 (OpenBLAS on Haswell's kernels; the AVX-512
    /// cores have small-matrix kernels that never read C for beta = 0). Tests switch it.
    nonisolated(unsafe) static var clearsOutputItself: Bool = {
        let core = Parallel.blasCore.lowercased()
        return core == "haswell" || core == "zen"
    }()

    @inline(__always)
    private static func clear(_ c: UnsafeMutablePointer<Float>, rows: Range<Int>, columns: Range<Int>, ldc: Int) {
        for r in rows { (c + r * ldc + columns.lowerBound).update(repeating: 0, count: columns.count) }
    }

    /// Multiply-adds below which a product stays on one thread (splitting costs more than it saves).
    static let splitMinimumWork = 1 << 17
}

extension Tensor {
    /// Matrix product with `torch.matmul` semantics: 1-D operands are promoted, leading batch axes broadcast.
    public func matmul(_ other: Tensor) -> Tensor {
        if rank == 1 { return unsqueezed(axis: 0).matmul(other).squeezed(axis: -2) }
        if other.rank == 1 { return matmul(other.unsqueezed(axis: 1)).squeezed(axis: -1) }
        ensure(rank >= 2 && other.rank >= 2, "matmul: shapes \(shape) and \(other.shape)")
        let m = shape[rank - 2], k = shape[rank - 1], n = other.shape[other.rank - 1]
        ensure(other.shape[other.rank - 2] == k,
                     "matmul: shapes \(shape) and \(other.shape) do not match (\(k) vs \(other.shape[other.rank - 2]))")
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        let batch = Shape.broadcast(batchA, batchB, op: "matmul")
        let out = Tensor(uninitializedShape: batch + [m, n])
        let opA = Gemm.operand(self), opB = Gemm.operand(other)
        let aBatchStrides = Shape.broadcastStrides(batchA, Array(opA.tensor.strides.dropLast(2)), to: batch)
        let bBatchStrides = Shape.broadcastStrides(batchB, Array(opB.tensor.strides.dropLast(2)), to: batch)
        let nb = Shape.count(batch)
        let pa = opA.tensor.basePointer, pb = opB.tensor.basePointer, pc = out.basePointer
        if k == 0 { out.storage.pointer.initialize(repeating: 0, count: out.count) }
        // Many small products (attention's heads) go whole to each thread; a few large ones are
        // each split by Gemm.sgemm.
        let byBatch = nb >= Parallel.threads && nb * m * n * k >= Gemm.splitMinimumWork
        func product(_ bi: Int) {
            var r = bi, oa = 0, ob = 0
            for d in stride(from: batch.count - 1, through: 0, by: -1) {
                oa += r % batch[d] * aBatchStrides[d]
                ob += r % batch[d] * bBatchStrides[d]
                r /= batch[d]
            }
            Gemm.sgemm(transA: opA.transposed, transB: opB.transposed, m: m, n: n, k: k,
                       a: pa + oa, lda: opA.ld, b: pb + ob, ldb: opB.ld, c: pc + bi * m * n, ldc: n,
                       split: !byBatch)
        }
        if k > 0 && m > 0 && n > 0 {
            if byBatch {
                Parallel.forEach(nb) { range in for bi in range { product(bi) } }
            } else {
                for bi in 0..<nb { product(bi) }
            }
        }
        let ad = detach(), bd = other.detach()
        return record(out, "matmul", [self, other], .matmul) { [shape] g in
            [self.requiresGrad ? g.matmul(bd.transposed()).sumToShape(shape) : nil,
             other.requiresGrad ? ad.transposed().matmul(g).sumToShape(other.shape) : nil]
        }
    }
}
