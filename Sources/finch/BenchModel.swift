import ArgumentParser
import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchTrain

/// Training and inference throughput of one zoo model on synthetic data, for the side-by-side
/// comparison with PyTorch (Benchmarks/compare_pytorch.py runs the same workload in timm).
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Images/s of a full training step (forward, backward, AdamW) and of eval-mode forward, with peak memory.",
        discussion: "Runs as `finch bench --model NAME` as well. The line before the last reads `gflops: forward_flop_per_image=… train_gflops=… eval_gflops=… sgemm_gflops=… train_fraction=… eval_fraction=…`; the last line reads `train images/s=… eval images/s=… peak_rss_mib=…`.")

    @OptionGroup var workload: BenchWorkload

    @Option(help: "Images per step.")
    var batch: Int = 32

    @Option(help: "Threads for Finch's loops and OpenBLAS.")
    var threads: Int = 2

    @Option(help: "full | head (backbone frozen: no gradient or optimizer work for it, BatchNorm in eval mode).")
    var finetune: String = "full"

    @Flag(help: "Skip the training measurement.")
    var evalOnly = false

    @Flag(help: "Skip the eval measurement.")
    var trainOnly = false

    func validate() throws {
        try checkOption("batch", batch, OptionRange.batch)
        try checkOption("threads", threads, OptionRange.threads)
        // Training-mode BatchNorm needs more than one value per channel (PyTorch refuses the same);
        // at batch 1 the last stages' 1×1 or 2×2 planes would not give it that.
        if !evalOnly && batch < 2 {
            throw ValidationError("--batch 1 cannot train (BatchNorm needs more than one value per channel); use --batch 2 or more, or --eval-only")
        }
    }

    mutating func run() throws {
        guard let mode = FineTuning.Mode(rawValue: finetune), mode != .partial else { throw ValidationError("--finetune is full or head, not \(finetune)") }
        Parallel.setThreads(threads)
        let net = try ModelRegistry.create(workload.model, numClasses: workload.numClasses, seed: 0)
        // Counted before anything runs, so the trace's batch-1 tensors are gone before the peak-memory
        // measurement starts (they are small beside a step's anyway).
        let flops = BenchFLOPs(forward: ForwardFLOPs(counting: net, inputShape: [3, workload.resolution, workload.resolution]))
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.normal([batch, 3, workload.resolution, workload.resolution], using: &rng)
        let labels = (0..<batch).map { _ in Int(rng.next() % UInt64(workload.numClasses)) }
        print("model=\(workload.model) params=\(net.parameterCount) batch=\(batch) resolution=\(workload.resolution) threads=\(threads) blas=\(Parallel.blasCore) kernels=\(KernelPath.summary) " +
              "steps=\(workload.steps) (median after \(workload.warmup) warm-up)")

        var trainRate = 0.0, evalRate = 0.0
        if !evalOnly {
            net.train()
            FineTuning.apply(mode, to: net)
            let opt = AdamW(parameters: net.namedParameters().filter { $0.tensor.requiresGrad }.map { (name: $0.name, tensor: $0.tensor) },
                            lr: 1e-4, weightDecay: 0.05)
            var times: [Double] = []
            var poolBefore = PoolStats()
            for i in 0..<(workload.warmup + workload.steps) {
                if i == workload.warmup && BenchPoolStats.isEnabled { Parallel.countPoolStats(true); poolBefore = Parallel.poolStats }
                let t = seconds {
                    let loss = Loss.crossEntropy(net(x), labels: labels)
                    loss.backward()
                    opt.step()
                    opt.zeroGrad()
                }
                if i >= workload.warmup { times.append(t) }
            }
            let m = median(times)
            trainRate = Double(batch) / m
            print("train: \(fmt(m * 1000)) ms/step  \(fmt(trainRate)) images/s  peak_rss_mib=\(fmt(PeakMemory.mebibytes))  " +
                  "peak_tensor_mib=\(fmt(Double(TensorStorage.peakLiveBytes) / 1048576)) pool_mappings=\(TensorStorage.poolMappings)")
            if BenchPoolStats.isEnabled {
                print(BenchPoolStats.line(Parallel.poolStats - poolBefore, steps: workload.steps, threads: threads))
                Parallel.countPoolStats(false)
            }
            if MemoryProfile.isEnabled {
                // FINCH_MEMORY_PROFILE: what the tensors at the training step's peak were made by.
                print("  peak reached in: \(MemoryProfile.peakContext)")
                for (label, bytes) in MemoryProfile.peakBreakdown where bytes >= 1 << 20 {
                    print("  at peak: \(fmt(Double(bytes) / 1048576)) MiB  \(label)")
                }
            }
        }
        if !trainOnly {
            net.eval()
            var times: [Double] = []
            for i in 0..<(workload.warmup + workload.steps) {
                let t = seconds { _ = noGrad { net(x) } }
                if i >= workload.warmup { times.append(t) }
            }
            let m = median(times)
            evalRate = Double(batch) / m
            print("eval:  \(fmt(m * 1000)) ms/step  \(fmt(evalRate)) images/s  peak_rss_mib=\(fmt(PeakMemory.mebibytes))")
        }
        // After the steps, so OpenBLAS's threads are as warm for the probe as they were for the model.
        print(flops.line(trainRate: mode == .full ? trainRate : 0, evalRate: evalRate, sgemm: BenchFLOPs.sgemmGFLOPs()))
        print("train images/s=\(fmt(trainRate)) eval images/s=\(fmt(evalRate)) peak_rss_mib=\(fmt(PeakMemory.mebibytes))")
    }
}

/// The process's peak resident set (VmHWM), what `/usr/bin/time -v` reports as maximum RSS.
enum PeakMemory {
    static var mebibytes: Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kib = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kib / 1024
        }
        return 0
    }
}
