import COpenBLAS
import FinchTensor
import FinchNN

/// Achieved GFLOP/s of a measured step beside raw sgemm's on the same machine and thread count, so
/// the distance to the machine's limit is visible per model (issue 25). The FLOP convention is
/// `ForwardFLOPs`'s: convolutions and matrix products only, 2 per multiply-add, training = 3 × forward.
struct BenchFLOPs {
    /// The probe's GEMM: 512³ is large enough for OpenBLAS to reach its steady rate on 2 threads and
    /// short (0.27 GFLOP) enough to cost well under a second even repeated.
    static let sgemmSize = 512

    let forward: ForwardFLOPs

    /// Median GFLOP/s of `cblas_sgemm` on n×n·n×n at the threads `Parallel.setThreads` chose.
    static func sgemmGFLOPs(n: Int = sgemmSize, repeats: Int = 15) -> Double {
        var rng = RandomGenerator(seed: 5)
        let a = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
        let b = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
        let c = Tensor(zeros: [n, n])
        let n32 = Int32(n)
        func product() {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n32, n32, n32, 1,
                        a.basePointer, n32, b.basePointer, n32, 0, c.basePointer, n32)
        }
        product(); product()   // warm-up: OpenBLAS's threads and buffers
        var times: [Double] = []
        for _ in 0..<repeats { times.append(seconds(product)) }
        return 2 * Double(n) * Double(n) * Double(n) / median(times) / 1e9
    }

    /// The `gflops:` line: the per-image forward FLOPs (exact integers, so a script can price another
    /// framework's step with the same work), the steps' achieved GFLOP/s (0 where a step was not
    /// measured, or for training when it is not a full fine-tune and the 3× convention does not hold)
    /// and each as a fraction of sgemm's.
    func line(trainRate: Double, evalRate: Double, sgemm: Double) -> String {
        let train = Double(forward.trainingStep) * trainRate / 1e9, eval = Double(forward.total) * evalRate / 1e9
        return "gflops: forward_flop_per_image=\(forward.total) conv_flop=\(forward.convolution) matmul_flop=\(forward.matmul) " +
            "train_gflops=\(fmt(train, 2)) eval_gflops=\(fmt(eval, 2)) sgemm_gflops=\(fmt(sgemm, 2)) " +
            "train_fraction=\(fmt(sgemm > 0 ? train / sgemm : 0, 3)) eval_fraction=\(fmt(sgemm > 0 ? eval / sgemm : 0, 3)) " +
            "sgemm_n=\(Self.sgemmSize) (2 FLOPs per multiply-add in convolutions and matmuls; train = 3 × forward)"
    }
}
