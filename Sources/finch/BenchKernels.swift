import ArgumentParser
import COpenBLAS
import FinchTensor

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s of matmul beside raw cblas_sgemm, and conv2d forward+backward times.")

    @Option(help: "Matrix sizes n for n×n·n×n products.")
    var sizes: [Int] = [256, 512, 1024, 2048]

    @Option(help: "Timed repetitions per measurement (the median is reported).")
    var repeats: Int = 9

    @Option(help: "Threads for Finch's loops and OpenBLAS.")
    var threads: Int = 2

    @Option(help: "Batch size for the convolution shapes.")
    var batch: Int = 32

    func validate() throws {
        try checkOption("threads", threads, OptionRange.threads)
        try checkOption("repeats", repeats, 1...1000)
        // The largest convolution case (7×7 on 3×128×128) needs about 4 MiB an image with its im2col and
        // gradients, so 1024 images stay within a few GiB.
        try checkOption("batch", batch, 1...1024)
        // Three n×n float matrices: 8192 is 768 MiB.
        for n in sizes { try checkOption("sizes", n, 1...8192) }
    }

    mutating func run() throws {
        Parallel.setThreads(threads)
        print("threads=\(threads) repeats=\(repeats) (median)")
        for n in sizes { benchMatmul(n) }
        benchConvolutions()
    }

    private func benchMatmul(_ n: Int) {
        var rng = RandomGenerator(seed: UInt64(n))
        let a = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
        let b = Tensor.uniform([n, n], low: -1, high: 1, using: &rng)
        let c = Tensor(zeros: [n, n])
        let reps = n >= 2048 ? max(3, repeats / 3) : repeats
        var tFinch: [Double] = [], tRaw: [Double] = []
        _ = a.matmul(b)   // warm-up: thread pool start, page faults
        // Alternate the two so machine noise hits both alike.
        for _ in 0..<reps {
            tFinch.append(seconds { _ = a.matmul(b) })
            tRaw.append(seconds {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                            a.basePointer, Int32(n), b.basePointer, Int32(n), 0, c.basePointer, Int32(n))
            })
        }
        let flops = 2 * Double(n) * Double(n) * Double(n)
        let gF = flops / median(tFinch) / 1e9, gR = flops / median(tRaw) / 1e9
        print("matmul n=\(n) finch=\(fmt(gF)) GFLOP/s sgemm=\(fmt(gR)) GFLOP/s ratio=\(fmt(gF / gR, 3))")
    }

    private struct ConvCase {
        let name: String
        let cin: Int, cout: Int, size: Int, kernel: Int, stride: Int, groups: Int
    }

    private func benchConvolutions() {
        let cases = [
            ConvCase(name: "depthwise3x3 16x64x64", cin: 16, cout: 16, size: 64, kernel: 3, stride: 1, groups: 16),
            ConvCase(name: "pointwise1x1 16->16 64x64", cin: 16, cout: 16, size: 64, kernel: 1, stride: 1, groups: 1),
            ConvCase(name: "depthwise3x3 96x16x16", cin: 96, cout: 96, size: 16, kernel: 3, stride: 1, groups: 96),
            ConvCase(name: "pointwise1x1 96->96 16x16", cin: 96, cout: 96, size: 16, kernel: 1, stride: 1, groups: 1),
            ConvCase(name: "conv3x3 3->16 s2 128x128", cin: 3, cout: 16, size: 128, kernel: 3, stride: 2, groups: 1),
            ConvCase(name: "conv7x7 3->64 s2 128x128", cin: 3, cout: 64, size: 128, kernel: 7, stride: 2, groups: 1),
            ConvCase(name: "conv3x3 64->128 s2 32x32", cin: 64, cout: 128, size: 32, kernel: 3, stride: 2, groups: 1),
        ]
        for cc in cases {
            var rng = RandomGenerator(seed: 7)
            let x = Tensor.uniform([batch, cc.cin, cc.size, cc.size], low: -1, high: 1, using: &rng).requiringGrad()
            let w = Tensor.uniform([cc.cout, cc.cin / cc.groups, cc.kernel, cc.kernel], low: -0.5, high: 0.5,
                                   using: &rng).requiringGrad()
            let pad = cc.kernel / 2
            func forward() -> Tensor {
                conv2d(x, weight: w, stride: (cc.stride, cc.stride), padding: (pad, pad), groups: cc.groups)
            }
            var g: Tensor? = nil
            _ = forward()
            var tf: [Double] = [], tb: [Double] = []
            for _ in 0..<repeats {
                var y: Tensor? = nil
                tf.append(seconds { y = forward() })
                if g == nil { g = Tensor(repeating: 1, shape: y!.shape) }
                x.grad = nil
                w.grad = nil
                tb.append(seconds { y!.backward(g!) })
            }
            let outHW = (cc.size + 2 * pad - cc.kernel) / cc.stride + 1
            let macs = Double(batch * cc.cout * outHW * outHW * (cc.cin / cc.groups) * cc.kernel * cc.kernel)
            let f = median(tf), b = median(tb)
            print("conv2d \(cc.name) batch=\(batch) forward=\(fmt(f * 1e3)) ms backward=\(fmt(b * 1e3)) ms " +
                  "forward=\(fmt(2 * macs / f / 1e9)) GFLOP/s backward=\(fmt(4 * macs / b / 1e9)) GFLOP/s")
        }
    }
}
