import ArgumentParser
import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchTrain

/// Data-parallel training throughput of one zoo model: run it plain (one process, its threads)
/// and under `mpirun -np N` (N ranks, cores ÷ N threads each) to compare the two ways of using a
/// machine's cores, and the time the gradient reduction takes per step.
struct BenchDistributed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distributed",
        abstract: "Images/s of data-parallel training steps and the allreduce time per step (run it under mpirun -np N, or plain for N = 1).",
        discussion: """
        Each rank trains on its share of a global batch of --batch random images (forward, backward, gradients summed \
        over the ranks, AdamW), as `train` does under mpirun. The last line, printed by rank 0, reads \
        `ranks=… threads=… train images/s=… allreduce ms/step=… exposed ms/step=…`.
        """)

    @OptionGroup var workload: BenchWorkload

    @Option(help: "Global batch: images per step over all ranks.")
    var batch: Int = 32

    @Option(help: "Threads per rank (default: cores ÷ ranks on this machine, as train uses).")
    var threads: Int?

    @Option(help: "Gradient bucket size in MiB (distributed.bucket_mb).")
    var bucketMb: Double = 25

    @Flag(inversion: .prefixedNo, help: "Reduce gradients while backward runs (distributed.overlap).")
    var overlap = true

    func validate() throws {
        try checkOption("batch", batch, 2...TrainConfig.Limits.batchSize)
        if let threads { try checkOption("threads", threads, OptionRange.threads) }
        guard bucketMb > 0 && bucketMb <= 1024 else { throw ValidationError("--bucket-mb \(bucketMb): expected above 0 and at most 1024") }
    }

    func run() throws {
        try Distributed.runCommand { comm in try measure(comm) }
    }

    private func measure(_ comm: Communicator?) throws {
        let ranks = comm?.size ?? 1, rank = comm?.rank ?? 0
        guard batch >= 2 * ranks else {
            throw ValidationError("--batch \(batch) gives some of the \(ranks) ranks fewer than 2 images (training BatchNorm needs 2)")
        }
        if let threads { Parallel.setThreads(threads) }
        // Shares as Shard gives them: sizes differ by at most one.
        let local = batch / ranks + (rank < batch % ranks ? 1 : 0)
        let net = try ModelRegistry.create(workload.model, numClasses: workload.numClasses, seed: 0)
        var rng = RandomGenerator(seed: 1 + UInt64(rank))
        let x = Tensor.normal([local, 3, workload.resolution, workload.resolution], using: &rng)
        let labels = (0..<local).map { _ in Int(rng.next() % UInt64(workload.numClasses)) }
        let parallel = comm.map { DataParallel(communicator: $0, bucketMB: bucketMb, overlap: overlap) }
        if let parallel { parallel.attach(to: net) }
        func say(_ s: String) { if rank == 0 { print(s) } }
        say("model=\(workload.model) params=\(net.parameterCount) ranks=\(ranks) global_batch=\(batch) resolution=\(workload.resolution) " +
            "threads=\(Distributed.threads) blas=\(Parallel.blasCore) kernels=\(KernelPath.summary) " +
            "overlap=\(parallel?.overlap ?? false) bucket_mb=\(bucketMb) steps=\(workload.steps) (median after \(workload.warmup) warm-up)")
        net.train()
        let params = net.namedParameters().filter { $0.tensor.requiresGrad }
        let opt = AdamW(parameters: params.map { (name: $0.name, tensor: $0.tensor) }, lr: 1e-4, weightDecay: 0.05)
        let trained = params.map(\.tensor)
        var times: [Double] = [], reduce: [Double] = [], exposed: [Double] = []
        for i in 0..<(workload.warmup + workload.steps) {
            comm?.barrier()
            let before = (parallel?.allreduceSeconds ?? 0, parallel?.exposedSeconds ?? 0)
            let t = seconds {
                let loss = Loss.crossEntropy(net(x), labels: labels) * (Float(local) / Float(batch))
                if let parallel {
                    parallel.backward(loss, params: trained, stepsNext: true)
                    parallel.reduceGradients(trained)
                } else {
                    loss.backward()
                }
                opt.step()
                opt.zeroGrad()
            }
            guard i >= workload.warmup else { continue }
            // The slowest rank sets the pace.
            var v = [t]
            comm?.allreduceMax(&v)
            times.append(v[0])
            reduce.append(1000 * ((parallel?.allreduceSeconds ?? 0) - before.0))
            exposed.append(1000 * ((parallel?.exposedSeconds ?? 0) - before.1))
        }
        let m = median(times)
        say("train images/s=\(fmt(Double(batch) / m)) ms/step=\(fmt(m * 1000)) allreduce ms/step=\(fmt(median(reduce), 2)) " +
            "exposed ms/step=\(fmt(median(exposed), 2)) ranks=\(ranks) threads=\(Distributed.threads)")
    }
}
