import XCTest
import Foundation
import FinchTestSupport
import FinchIO
@testable import FinchTrain

/// Gradient reduction overlapped with backward (`distributed.overlap`), the per-rank batch
/// option and the progress lines under mpirun, on the tiny runs of `DistributedTrainingTests`.
extension DistributedTrainingTests {
    /// With 2 ranks each gradient element is a + b whatever the bucket layout or the MPI call,
    /// so overlapped and after-backward reductions must give the same bits; BatchNorm trains with
    /// `sync_bn`, whose blocking reductions in backward run while the buckets are in flight.
    /// With 3 ranks the nonblocking allreduce may add in another order: within the bound of
    /// `DistributedTrainingTests` (1e-4 of the distance trained). Small buckets (0.2 MB: ~18 for
    /// this model) so that most of them start while backward runs.
    func testOverlappedReductionMatchesReductionAfterBackward() throws {
        let small = ["--set", "distributed.bucket_mb=0.2", "--set", "mixup.mixup_alpha=0", "--set", "mixup.cutmix_alpha=0"]
        var outputs: [String: String] = [:]
        for (name, ranks, overlap, finetune) in [("on2", 2, true, "{mode: full}"), ("off2", 2, false, "{mode: full}"),
                                                 ("on3", 3, true, "{freeze_bn: true}"), ("off3", 3, false, "{freeze_bn: true}")] {
            let cfg = try writeConfig(name, epochs: 2, finetune: finetune, lr: 0.01)
            outputs[name] = train(ranks: ranks, ["--config", cfg, "--set", "distributed.overlap=\(overlap)"] + small).output
        }
        let on2 = try weights(checkpoint("on2", "last.h5")), off2 = try weights(checkpoint("off2", "last.h5"))
        XCTAssertEqual(on2.count, off2.count)
        for (k, v) in off2 { XCTAssertEqual(on2[k], v, "2 ranks: \(k) differs between overlapped and after-backward reduction") }
        let lossOn = try Checkpoint.read(checkpoint("on2", "last.h5")).metrics["train/loss"]
        XCTAssertEqual(lossOn, try Checkpoint.read(checkpoint("off2", "last.h5")).metrics["train/loss"])

        let d = relativeDistance(try weights(checkpoint("on3", "last.h5")), try weights(checkpoint("off3", "last.h5")),
                                 start: try weights(checkpoint("off3", "epoch-1.h5")))
        XCTAssertLessThan(d, 1e-4, "3 ranks: overlapped reduction differs by \(d) of the distance trained in epoch 2")
        print("DistributedOverlapTests: 3 ranks, overlapped vs after backward differ by \(d) of the distance trained in epoch 2")

        // The time in allreduce and the part of it after backward, in the metrics and on rank 0's epoch lines.
        for (name, overlap) in [("on2", true), ("off2", false), ("on3", true)] {
            let m = try Checkpoint.read(checkpoint(name, "last.h5")).metrics
            let total = try XCTUnwrap(m["dist/allreduce_ms_per_step"]), exposed = try XCTUnwrap(m["dist/allreduce_exposed_ms_per_step"])
            XCTAssertEqual(total.count, 2)
            for (t, e) in zip(total, exposed) {
                XCTAssertGreaterThan(e, 0, name)
                // Overlapped: the first buckets start while backward runs, so part of the time is hidden.
                if overlap { XCTAssertLessThan(e, t, "\(name): \(total) \(exposed)") } else { XCTAssertEqual(e, t, name) }
            }
            let out = outputs[name]!
            XCTAssertEqual(out.components(separatedBy: " ms exposed)").count - 1, 2, "one allreduce figure per epoch, rank 0's:\n\(out)")
        }
    }

    /// `distributed.batch_size_per_rank`: 2 per rank on 2 ranks is the run with a global batch
    /// of 4, bit for bit (same shards, same learning rate); the start-up line names the global batch.
    func testBatchSizePerRankMakesTheGlobalBatch() throws {
        let global = try writeConfig("global", epochs: 1)
        let perRank = try writeConfig("perrank", epochs: 1)
        train(ranks: 2, ["--config", global])
        let out = train(ranks: 2, ["--config", perRank, "--set", "data.batch_size=2", "--set", "distributed.batch_size_per_rank=true"]).output
        XCTAssertTrue(out.contains("data-parallel: 2 ranks, global batch 4"), out)
        let a = try weights(checkpoint("global", "last.h5")), b = try weights(checkpoint("perrank", "last.h5"))
        for (k, v) in a { XCTAssertEqual(b[k], v, k) }
        XCTAssertEqual(try Checkpoint.read(checkpoint("perrank", "last.h5")).globalStep, 3)
    }

    /// Open MPI gives every rank a pseudo-terminal even when mpirun's output goes to a pipe or a
    /// file: rank 0 prints plain lines (each batch here: an epoch of 3), no carriage-return bar,
    /// unless FINCH_PROGRESS=bar asks for it.
    func testProgressUnderMPIRunIsPlainLines() throws {
        let cfg = try writeConfig("lines", epochs: 1)
        let out = train(ranks: 2, ["--config", cfg]).output
        XCTAssertFalse(out.contains("\r"), out)
        for line in ["epoch 1/1  33% 1/3 loss", "epoch 1/1  66% 2/3 loss", "epoch 1/1 100% 3/3 loss"] {
            XCTAssertEqual(out.components(separatedBy: line).count - 1, 1, "'\(line)' once, from rank 0:\n\(out)")
        }
        let bar = ChildProcess.run(Self.mpirun, Self.mpirunFlags + ["-x", "FINCH_PROGRESS=bar", "-np", "2", trainBinary.path, "--config", cfg], in: base)
        XCTAssertEqual(bar.status, 0, bar.output)
        XCTAssertTrue(bar.output.contains("\repoch 1/1 "), bar.output)
        XCTAssertFalse(bar.output.contains("100% 3/3 loss"), bar.output)
    }
}

extension DistributedTrainingTests {
    /// `finch bench distributed` runs plain (1 rank) and under mpirun (2 ranks), rank 0 alone
    /// printing the kernel path and the figures.
    func testBenchDistributedRunsAtOneAndTwoRanks() throws {
        let args = ["bench", "distributed", "--model", "mobilenetv3_small_100", "--batch", "4", "--resolution", "32",
                    "--steps", "1", "--warmup", "0", "--num-classes", "2", "--bucket-mb", "0.5"]
        let one = ChildProcess.run(finchBinary, args, in: base)
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertTrue(one.output.contains("ranks=1 ") && one.output.contains("kernels="), one.output)
        let two = ChildProcess.run(Self.mpirun, Self.mpirunFlags + ["-np", "2", finchBinary.path] + args, in: base)
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertEqual(two.output.components(separatedBy: "train images/s=").count - 1, 1, two.output)
        XCTAssertTrue(two.output.contains("ranks=2 threads=1") && two.output.contains("overlap=true"), two.output)
        let reduce = two.output.components(separatedBy: "allreduce ms/step=").last?.split(separator: " ").first.flatMap { Double($0) }
        XCTAssertGreaterThan(try XCTUnwrap(reduce, two.output), 0)
    }
}
