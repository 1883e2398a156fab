import XCTest
import Foundation
import FinchTestSupport
import FinchIO
import FinchData
import FinchTensor
@testable import FinchTrain

/// `mpirun -np N train` on a tiny model and generated images, against one plain process.
///
/// The bound: a rank's gradient is the sum over its share of the batch, scaled by n_r / B, and
/// the ranks' sums are added by MPI, so each gradient element is the same sum of B per-sample
/// terms in another order plus two roundings. Float32 summation of k terms in any order is
/// within (k − 1)·ε·Σ|gᵢ| of the exact sum (ε = 2⁻²⁴), so one step's gradients differ by at most
/// 2(B + N)·ε·Σ|gᵢ|/B, about 1e-6 of the mean absolute contribution for B = 4, N ≤ 3. With
/// momentum SGD the update is linear in the gradient; the differences then propagate through the
/// changed weights for a few steps. The tests allow the weights' distance from one process
/// 1e-4 of the distance they moved in training (measured: 1.1e-6 at N = 2, 1.3e-6 at N = 3), and
/// the losses 1e-4 relative: two orders above the derived step error, far below what a wrong
/// share, weight or missed image gives (≥ 1e-2).
final class DistributedTrainingTests: XCTestCase {
    var base: URL!

    var trainBinary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/train").standardized
    }
    static let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")
    /// CI runs as root; --oversubscribe lets 3 ranks share 2 cores.
    static let mpirunFlags = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp"]

    override func setUpWithError() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: trainBinary.path), "the train executable is missing at \(trainBinary.path)")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.mpirun.path), "mpirun is missing (apt-get install openmpi-bin)")
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-mpi-\(UUID().uuidString)")
        try GeneratedImages.make(under: base.appendingPathComponent("data"), train: 12, val: 7)
    }
    override func tearDownWithError() throws { if let base { try? FileManager.default.removeItem(at: base) } }

    func writeConfig(_ name: String, epochs: Int = 3, checkpoints: String = "{keep: 5}",
                     finetune: String = "{freeze_bn: true}", lr: Double = 0.05,
                     model: String = "{name: mobilenetv3_small_100}") throws -> String {
        // Full training with frozen BatchNorm statistics (equal at any N without synchronising
        // them), MixUp drawn over the global batch, augmentation drawn per image.
        let text = """
        experiment: \(name)
        seed: 11
        data: {root: data, image_size: 32, batch_size: 4, workers: 1, drop_last: true, scale: [0.5, 1.0]}
        model: \(model)
        finetune: \(finetune)
        optimizer: {name: momentum, lr: \(lr), weight_decay: 0.0001}
        schedule: {name: cosine, epochs: \(epochs), warmup_epochs: 0}
        mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0, label_smoothing: 0.1}
        checkpoint: \(checkpoints)
        """
        try text.write(to: base.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        return "\(name).yaml"
    }

    @discardableResult
    func train(ranks: Int?, _ args: [String], expectStatus: Int32? = 0) -> (status: Int32, output: String) {
        let r = ranks.map { ChildProcess.run(Self.mpirun, Self.mpirunFlags + ["-np", "\($0)", trainBinary.path] + args, in: base) }
            ?? ChildProcess.run(trainBinary, args, in: base)
        if let expectStatus { XCTAssertEqual(r.status, expectStatus, "ranks \(ranks ?? 0): train \(args.joined(separator: " ")):\n\(r.output)") }
        return r
    }

    func weights(_ url: URL) throws -> [String: [Float]] {
        let f = try HDF5File(reading: url)
        let g = try f.root.group("model")
        var out: [String: [Float]] = [:]
        for n in try g.memberNames() where !g.isGroup(n) {
            if try g.datasetTypeName(n).hasPrefix("float32") || g.datasetTypeName(n) == "float" { out[n] = try g.readTensor(n).scalars }
        }
        return out
    }

    /// ‖a − b‖ / ‖b − start‖ over every float tensor of the model.
    func relativeDistance(_ a: [String: [Float]], _ b: [String: [Float]], start: [String: [Float]]) -> Double {
        var diff = 0.0, moved = 0.0
        for (k, bv) in b {
            guard let av = a[k], let sv = start[k] else { XCTFail("\(k) missing"); return .infinity }
            for i in bv.indices {
                diff += pow(Double(av[i]) - Double(bv[i]), 2)
                moved += pow(Double(bv[i]) - Double(sv[i]), 2)
            }
        }
        return (diff / max(moved, 1e-30)).squareRoot()
    }

    /// A file of the experiment's newest run (`latest`: each run writes its own folder).
    func checkpoint(_ experiment: String, _ file: String) -> URL {
        base.appendingPathComponent("Checkpoints/\(experiment)/latest/\(file)")
    }

    /// One process, then 2 and 3 ranks (shares 2+2, 2+1+1 of each batch of 4): the same loss
    /// history and weights within the bound above, and the same evaluation of the 7 validation
    /// images (4+3 and 3+2+2 per rank, none twice). Rank 0 alone writes.
    func testTwoAndThreeRanksMatchOneProcess() throws {
        try compareRankCounts(finetune: "{freeze_bn: true}")
    }

    /// BatchNorm training with `sync_bn` (the default): statistics of the global batch in forward,
    /// its reduced terms in backward. One step over all 12 images (6+6, 4+4+4 per rank) from the
    /// same start: the forward loss equal to 1e-5, the step within 1e-3 of its length.
    ///
    /// Why looser than frozen BatchNorm: BatchNorm's input gradient γ·invstd·(dy − mean(dy) −
    /// x̂·mean(dy·x̂)) is a difference of terms much larger than the result, so the reordered sums
    /// (rounding ε·|dy|) become a relative error ε·|dy|/|dx|, tens to hundreds of ε per layer on
    /// these 2×2 and 1×1 maps, compounded over the 30 layers: measured 6.5e-6 of the step at N = 2, 5.4e-6 at N = 3.
    /// (Several steps on 4 images of 1×1 maps are chaotic: the same rounding grows to percent.)
    func testSyncBatchNormMatchesOneProcess() throws {
        var step: [String: [String: [Float]]] = [:]
        var losses: [String: Double] = [:]
        for (name, ranks, lr) in [("start", nil, 0.0), ("one", nil, 0.01), ("two", 2, 0.01), ("three", 3, 0.01)] as [(String, Int?, Double)] {
            let cfg = try writeConfig(name, epochs: 1, finetune: "{mode: full}", lr: lr)
            train(ranks: ranks, ["--config", cfg, "--set", "data.batch_size=12", "--set", "mixup.mixup_alpha=0", "--set", "mixup.cutmix_alpha=0"])
            step[name] = try weights(checkpoint(name, "last.h5"))
            losses[name] = try Checkpoint.read(checkpoint(name, "last.h5")).metrics["train/loss"]?.first
        }
        for name in ["two", "three"] {
            let d = relativeDistance(step[name]!, step["one"]!, start: step["start"]!)
            XCTAssertLessThan(d, 1e-3, "\(name): the step differs from one process's by \(d) of its length")
            XCTAssertEqual(losses[name]!, losses["one"]!, accuracy: 1e-5 * losses["one"]!, name)
            print("DistributedTrainingTests sync_bn: \(name) ranks, the step differs by \(d) of its length")
        }
    }

    /// Without `sync_bn` each rank normalises with its own share (DDP's default): the run differs
    /// from one process, which shows the synchronised run's agreement is not an accident.
    func testWithoutSyncBatchNormRanksUseTheirOwnStatistics() throws {
        let one = try writeConfig("alone", epochs: 1, finetune: "{mode: full}")
        let two = try writeConfig("ddp", epochs: 1, finetune: "{mode: full}")
        train(ranks: nil, ["--config", one])
        train(ranks: 2, ["--config", two, "--set", "distributed.sync_bn=false"])
        let a = try Checkpoint.read(checkpoint("alone", "last.h5")).metrics["train/loss"]!
        let b = try Checkpoint.read(checkpoint("ddp", "last.h5")).metrics["train/loss"]!
        XCTAssertGreaterThan(abs(a[0] - b[0]), 1e-3 * abs(a[0]), "\(a) vs \(b)")
    }

    /// Dropout before the classifier and drop-path in the blocks: each rank keeps its rows of the
    /// masks one process draws for the global batch, so the run is the same at any N, within the
    /// same bound (masks drawn per rank differ from one process's by far more: ~6e-3 of the
    /// distance trained before this was done).
    func testDropoutAndDropPathMatchOneProcess() throws {
        try compareRankCounts(finetune: "{freeze_bn: true}",
                              model: "{name: mobilenetv3_small_100, drop_rate: 0.3, drop_path_rate: 0.2}")
    }

    func compareRankCounts(finetune: String, lr: Double = 0.05, model: String = "{name: mobilenetv3_small_100}") throws {
        let one = try writeConfig("one", finetune: finetune, lr: lr, model: model)
        let two = try writeConfig("two", finetune: finetune, lr: lr, model: model)
        let three = try writeConfig("three", finetune: finetune, lr: lr, model: model)
        train(ranks: nil, ["--config", one])
        let out2 = train(ranks: 2, ["--config", two]).output
        train(ranks: 3, ["--config", three])
        XCTAssertTrue(out2.contains("data-parallel: 2 ranks, global batch 4"), out2)
        for line in ["run folder ", "done: best "] {
            XCTAssertEqual(out2.components(separatedBy: line).count - 1, 1, "rank 0 alone prints '\(line)':\n\(out2)")
        }

        let reference = try Checkpoint.read(checkpoint("one", "last.h5"))
        let start = try weights(checkpoint("one", "epoch-1.h5"))
        let w1 = try weights(checkpoint("one", "last.h5"))
        for name in ["two", "three"] {
            let c = try Checkpoint.read(checkpoint(name, "last.h5"))
            XCTAssertEqual(c.globalStep, reference.globalStep, name)
            for key in ["train/loss", "val/loss"] {
                let a = try XCTUnwrap(c.metrics[key]), b = try XCTUnwrap(reference.metrics[key])
                XCTAssertEqual(a.count, 3)
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * abs(y), "\(name) \(key): \(a) vs \(b)") }
            }
            // Top-1 over 7 images: any image missed or counted twice moves it by at least 1/8.
            XCTAssertEqual(c.metrics["val/top1"], reference.metrics["val/top1"], name)
            XCTAssertEqual(c.metrics["val/top5"], reference.metrics["val/top5"], name)
            let d = relativeDistance(try weights(checkpoint(name, "last.h5")), w1, start: start)
            XCTAssertLessThan(d, 1e-4, "\(name): weights differ from one process by \(d) of the distance trained")
            print("DistributedTrainingTests \(finetune) \(model): \(name) ranks, weights differ by \(d) of the distance trained from epoch 1")
        }
        // The confusion matrix counts each of the 7 validation images once, as one process does.
        let matrices = try ["one", "two", "three"].map { name -> String in
            let runs = try FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent("Experiments/runs/\(name)").path)
            XCTAssertEqual(runs.count, 1, "one run folder for \(name): \(runs)")
            return try String(contentsOf: base.appendingPathComponent("Experiments/runs/\(name)/\(runs[0])/confusion.txt"), encoding: .utf8)
        }
        let counts = matrices[0].split(separator: "\n").dropFirst().flatMap { $0.split(separator: " ").dropFirst().compactMap { Int($0) } }
        XCTAssertEqual(counts.reduce(0, +), 7, matrices[0])
        XCTAssertEqual(matrices[1], matrices[0])
        XCTAssertEqual(matrices[2], matrices[0])
    }

    /// A checkpoint written by 2 ranks at epoch 2 resumes at 3 ranks and at 1 process, and both
    /// end where the straight 2-rank run ended (its sampler position and random streams are global).
    func testCheckpointResumesAtAnotherRankCount() throws {
        let cfg = try writeConfig("resume")
        train(ranks: 2, ["--config", cfg])
        let ck = checkpoint("resume", "").resolvingSymlinksInPath()   // the 2-rank run's folder
        let straight = base.appendingPathComponent("straight.h5"), halfway = base.appendingPathComponent("halfway.h5")
        try FileManager.default.copyItem(at: ck.appendingPathComponent("last.h5"), to: straight)
        try FileManager.default.copyItem(at: ck.appendingPathComponent("epoch-2.h5"), to: halfway)
        let start = try weights(ck.appendingPathComponent("epoch-1.h5"))
        for ranks in [3, 1] {
            let out = train(ranks: ranks, ["--config", cfg, "--resume", halfway.path]).output
            XCTAssertTrue(out.contains("resumed from"), out)
            let d = relativeDistance(try weights(checkpoint("resume", "last.h5")), try weights(straight), start: start)
            XCTAssertLessThan(d, 1e-4, "resumed at \(ranks) ranks: \(d)")
            let a = try Checkpoint.read(checkpoint("resume", "last.h5")).metrics["train/loss"]!
            let b = try Checkpoint.read(straight).metrics["train/loss"]!
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * abs(y), "resumed at \(ranks): \(a) vs \(b)") }
        }
    }

    /// The transport between machines: 2 ranks over TCP (loopback here; `--mca btl tcp,self`)
    /// end where 2 ranks over shared memory end, within the bound (the reduction's order is the
    /// collective algorithm's, not the transport's).
    func testTCPTransportMatchesSharedMemory() throws {
        let shm = try writeConfig("shm", epochs: 1), tcp = try writeConfig("tcp", epochs: 1)
        train(ranks: 2, ["--config", shm])
        let r = ChildProcess.run(Self.mpirun, ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "tcp,self",
                                               "-np", "2", trainBinary.path, "--config", tcp], in: base)
        XCTAssertEqual(r.status, 0, r.output)
        let a = try weights(checkpoint("shm", "last.h5")), b = try weights(checkpoint("tcp", "last.h5"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0
        for (k, v) in a { for (x, y) in zip(v, b[k]!) { worst = max(worst, abs(x - y)) } }
        XCTAssertLessThan(worst, 1e-5, "largest weight difference between the transports")
    }

    /// Two machines on paper: rank 0 and rank 1 in separate network namespaces joined by a veth
    /// pair (10.x addresses), reaching each other only over it. `mpirun` runs in the first and
    /// starts the second's daemon through a `plm_rsh_agent` script that stands in for ssh
    /// (`ip netns exec`), so Open MPI sees two hosts: daemons (`oob_tcp_if_include`) and
    /// gradients (`btl tcp,self`, `btl_tcp_if_include`) cross the veth. The run ends where 2 ranks
    /// over shared memory end, within the bound. Needs root and `ip` (iproute2), as CI has.
    func testTwoRanksInSeparateNetworkNamespacesOverTCP() throws {
        let ip = URL(fileURLWithPath: "/bin/ip")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: ip.path), "ip is missing (apt-get install iproute2)")
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        let (nsA, nsB, vethA, vethB) = ("finch-\(tag)-a", "finch-\(tag)-b", "fv\(tag)a", "fv\(tag)b")
        let subnet = "10.231.\(Int.random(in: 1...250))"
        let (hostA, hostB) = ("\(subnet).1", "\(subnet).2")
        func run(_ args: String...) {
            let r = ChildProcess.run(ip, args)
            XCTAssertEqual(r.status, 0, "ip \(args.joined(separator: " ")): \(r.output)")
        }
        run("netns", "add", nsA)
        defer { _ = ChildProcess.run(ip, ["netns", "del", nsA]) }
        run("netns", "add", nsB)
        defer { _ = ChildProcess.run(ip, ["netns", "del", nsB]) }   // deleting a namespace removes its veth end
        run("link", "add", vethA, "type", "veth", "peer", "name", vethB)
        run("link", "set", vethA, "netns", nsA)
        run("link", "set", vethB, "netns", nsB)
        for (ns, dev, addr) in [(nsA, vethA, hostA), (nsB, vethB, hostB)] {
            run("-n", ns, "addr", "add", "\(addr)/24", "dev", dev)
            run("-n", ns, "link", "set", dev, "up")
            run("-n", ns, "link", "set", "lo", "up")
        }
        // The agent is called as ssh would be ("[options] host command…") and logs where it went.
        let agent = base.appendingPathComponent("netns-agent.sh"), log = base.appendingPathComponent("netns-agent.log")
        try """
        #!/bin/sh
        while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
        host=$1; shift
        case "$host" in \(hostA)) ns=\(nsA);; \(hostB)) ns=\(nsB);; *) echo "unknown host $host" >&2; exit 1;; esac
        echo "$host $ns" >> '\(log.path)'
        exec \(ip.path) netns exec "$ns" /bin/sh -c "$*"

        """.write(to: agent, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: agent.path)

        let shm = try writeConfig("shm", epochs: 1), tcp = try writeConfig("netns", epochs: 1)
        train(ranks: 2, ["--config", shm])
        let r = ChildProcess.run(ip, ["netns", "exec", nsA, Self.mpirun.path, "--allow-run-as-root",
                                      "--mca", "plm_rsh_agent", agent.path, "-H", "\(hostA),\(hostB)", "-np", "2",
                                      "--mca", "btl", "tcp,self", "--mca", "oob_tcp_if_include", "\(subnet).0/24",
                                      "--mca", "btl_tcp_if_include", "\(subnet).0/24", "-x", "FINCH_NUM_THREADS=1",
                                      trainBinary.path, "--config", tcp], in: base)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("data-parallel: 2 ranks"), r.output)
        // mpirun started the second host's daemon in the second namespace (the first is local).
        XCTAssertEqual(try String(contentsOf: log, encoding: .utf8), "\(hostB) \(nsB)\n")
        let a = try weights(checkpoint("shm", "last.h5")), b = try weights(checkpoint("netns", "last.h5"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0
        for (k, v) in a { for (x, y) in zip(v, b[k]!) { worst = max(worst, abs(x - y)) } }
        XCTAssertLessThan(worst, 1e-5, "largest weight difference between the transports")
    }

    /// Ranks started with different configs stop before the first step, naming the rank.
    func testMismatchedConfigsAreRefusedBeforeTheFirstStep() throws {
        let a = try writeConfig("same"), b = "other.yaml"
        try String(contentsOf: base.appendingPathComponent(a), encoding: .utf8).replacingOccurrences(of: "lr: 0.05", with: "lr: 0.06")
            .write(to: base.appendingPathComponent(b), atomically: true, encoding: .utf8)
        let r = ChildProcess.run(Self.mpirun, Self.mpirunFlags + ["-np", "2", trainBinary.path, "--config", a, ":",
                                                                  "-np", "1", trainBinary.path, "--config", b], in: base)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("the resolved config of rank 2 differs from rank 0's"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("Checkpoints/same").path), "a checkpoint folder was made:\n\(r.output)")
    }

    /// kill -9 of rank 1 mid-run: mpirun ends the others within seconds and names the rank; the
    /// last checkpoint reads back whole and resumes.
    func testKilledRankStopsTheOthers() throws {
        let cfg = try writeConfig("killed", epochs: 500, checkpoints: "{every: 1, keep: 0}")
        let p = Process()
        p.executableURL = Self.mpirun
        p.arguments = Self.mpirunFlags + ["-np", "2", trainBinary.path, "--config", cfg]
        p.currentDirectoryURL = base
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let last = checkpoint("killed", "last.h5")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: last.path) && Date() < deadline && p.isRunning { usleep(50_000) }
        XCTAssertTrue(p.isRunning, "the run ended before the kill")
        let rank1 = try XCTUnwrap(Self.childRanks(of: p.processIdentifier)[1], "rank 1's process not found")
        kill(rank1, SIGKILL)
        let killed = Date()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertLessThan(seconds, 20, "the other rank took \(seconds) s to stop:\n\(out)")
        XCTAssertNotEqual(p.terminationStatus, 0, out)
        XCTAssertTrue(out.contains("process rank 1") && out.contains("signal 9"), "the message does not name rank 1:\n\(out)")
        let c = try Checkpoint.read(last)
        XCTAssertGreaterThan(c.epoch, 0)
        let resumed = train(ranks: 2, ["--config", cfg, "--set", "schedule.epochs=\(c.epoch + 1)", "--resume", last.path])
        XCTAssertTrue(resumed.output.contains("resumed from"), resumed.output)
    }

    /// The processes mpirun started, by their OMPI_COMM_WORLD_RANK.
    static func childRanks(of parent: Int32) -> [Int: Int32] {
        var out: [Int: Int32] = [:]
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in procs {
            guard let pid = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent,
                  let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            for entry in env.split(separator: 0) {
                let s = String(decoding: entry, as: UTF8.self)
                if s.hasPrefix("OMPI_COMM_WORLD_RANK="), let r = Int(s.dropFirst(21)) { out[r] = pid }
            }
        }
        return out
    }

    var finchBinary: URL { trainBinary.deletingLastPathComponent().appendingPathComponent("finch") }

    /// `finch evaluate` and `finch ncm` under mpirun print what one process prints: the 7
    /// validation images (batches of 4 shared 2+1+1 and 1+1+1) each counted once.
    func testEvaluateAndNearestClassMeanUnderMPIRun() throws {
        let cfg = try writeConfig("eval", epochs: 1)
        train(ranks: nil, ["--config", cfg])
        let ck = checkpoint("eval", "last.h5").path
        for args in [["evaluate", "--checkpoint", ck, "--data", "data", "--batch", "4"],
                     ["ncm", "--weights", ck, "--data", "data", "--batch", "4"]] {
            let alone = ChildProcess.run(finchBinary, args, in: base)
            XCTAssertEqual(alone.status, 0, alone.output)
            // Timing figures differ between runs; everything else is compared.
            func stable(_ s: String) -> [String] {
                s.split(separator: "\n").map { $0.replacingOccurrences(of: #"[0-9.]+ img/s|total [0-9.]+ s"#, with: "", options: .regularExpression) }
            }
            for ranks in [2, 3] {
                let r = ChildProcess.run(Self.mpirun, Self.mpirunFlags + ["-np", "\(ranks)", finchBinary.path] + args, in: base)
                XCTAssertEqual(r.status, 0, r.output)
                XCTAssertEqual(stable(r.output), stable(alone.output), "\(args[0]) at \(ranks) ranks")
            }
            XCTAssertTrue(alone.output.contains("on 7 images") || alone.output.contains("→ 7 val images"), alone.output)
        }
    }

    /// Shares partition every batch: contiguous, sizes within one, in rank order.
    func testShardsPartitionEveryBatch() throws {
        for count in 1...5 {
            for n in 0...13 {
                let parts = try (0..<count).map { try Shard(index: $0, count: count).range(in: n) }
                XCTAssertEqual(parts.first?.lowerBound, 0)
                XCTAssertEqual(parts.last?.upperBound, n)
                for (a, b) in zip(parts, parts.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual(parts.map(\.count).max()! - parts.map(\.count).min()!, 1)
            }
        }
        XCTAssertThrowsError(try Shard(index: 2, count: 2))
        XCTAssertThrowsError(try Shard(index: 0, count: 0))
    }

    /// A plain process never starts MPI: its communicator is the single-process one.
    func testPlainProcessUsesNoMPI() {
        XCTAssertFalse(Distributed.launchedByMPI(["PATH": "/usr/bin"]))
        XCTAssertTrue(Distributed.launchedByMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertEqual(Distributed.threadsPerRank(cores: 2, localSize: 3), 1)
        XCTAssertEqual(Distributed.threadsPerRank(cores: 8, localSize: 3), 2)
        XCTAssertEqual(Distributed.threadsPerRank(cores: 2, localSize: 1), 2)
    }
}

/// Small two-class PNGs (uncompressed zlib), reddish vs bluish with noise, written without any
/// image library.
enum GeneratedImages {
    static func make(under root: URL, train: Int, val: Int) throws {
        var seed: UInt64 = 12345
        func next() -> UInt8 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: seed >> 56) }
        for (split, count) in [("train", train), ("val", val)] {
            for i in 0..<count {
                let cls = i % 2
                let dir = root.appendingPathComponent("\(split)/\(cls == 0 ? "red" : "blue")")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                let w = 40, h = 36
                var rows: [UInt8] = []
                for _ in 0..<h {
                    rows.append(0)
                    for _ in 0..<w {
                        let noise = next() / 4
                        rows += cls == 0 ? [160 &+ noise / 2, noise, noise] : [noise, noise, 160 &+ noise / 2]
                    }
                }
                try Data(png(width: w, height: h, raw: rows)).write(to: dir.appendingPathComponent("\(i).png"))
            }
        }
    }

    static func png(width: Int, height: Int, raw: [UInt8]) -> [UInt8] {
        var z: [UInt8] = [0x78, 0x01]
        var at = 0
        repeat {
            let n = min(65535, raw.count - at)
            let final: UInt8 = at + n == raw.count ? 1 : 0
            z += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            z += raw[at..<at + n]
            at += n
        } while at < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        z += be32(b << 16 | a)
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0])
            + chunk("IDAT", z) + chunk("IEND", [])
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in body {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return be32(UInt32(data.count)) + body + be32(~crc)
    }
}

/// The synchronised BatchNorm op against `batchNorm2d`: with the identity as the sum over
/// processes (one process) it gives the same output, running statistics and gradients, to rounding;
/// with the batch split in two and the halves' sums added, the same again.
final class SyncBatchNormOpTests: XCTestCase {
    func testOneProcessAndTwoHalvesMatchBatchNorm() throws {
        var rng = RandomGenerator(seed: 3)
        let n = 4, c = 3, h = 5
        let xv = (0..<(n * c * h * h)).map { _ in Float(rng.nextDouble() * 4 - 1) }
        let gv = (0..<(n * c * h * h)).map { _ in Float(rng.nextDouble() - 0.5) }
        func reference() -> (y: [Float], dx: [Float], dw: [Float], db: [Float], rv: [Float]) {
            let x = Tensor(xv, shape: [n, c, h, h], requiresGrad: true)
            let w = Tensor([1.5, 0.5, -1], shape: [c], requiresGrad: true), b = Tensor([0.1, 0.2, 0.3], shape: [c], requiresGrad: true)
            let rm = Tensor(zeros: [c]), rv = Tensor(repeating: 1, shape: [c])
            let y = batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true)
            (y * Tensor(gv, shape: [n, c, h, h])).sum().backward()
            return (y.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars, rv.scalars)
        }
        let r = reference()
        // Two "processes" in one: the halves run in lockstep on two threads would need MPI; here the
        // first half's forward sums are recorded and the second half adds them (a two-rank sum).
        let x = Tensor(xv, shape: [n, c, h, h], requiresGrad: true)
        let w = Tensor([1.5, 0.5, -1], shape: [c], requiresGrad: true), b = Tensor([0.1, 0.2, 0.3], shape: [c], requiresGrad: true)
        let rm = Tensor(zeros: [c]), rv = Tensor(repeating: 1, shape: [c])
        let y = syncBatchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, momentum: 0.1, eps: 1e-5, sum: { _ in })
        (y * Tensor(gv, shape: [n, c, h, h])).sum().backward()
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            XCTAssertEqual(a.count, b.count)
            let scale = b.map { abs($0) }.max() ?? 1
            for (p, q) in zip(a, b) { XCTAssertEqual(p, q, accuracy: 1e-5 * max(scale, 1), what) }
        }
        close(y.scalars, r.y, "y")
        close(x.grad!.scalars, r.dx, "dx")
        close(w.grad!.scalars, r.dw, "dγ")
        close(b.grad!.scalars, r.db, "dβ")
        close(rv.scalars, r.rv, "running_var")

        // Rank 0 of two, holding the first image: its sums are replaced by the whole batch's (what
        // the other rank's would add), recorded from a one-process run of the same op.
        var recorded: [[Double]] = []
        let full = Tensor(xv, shape: [n, c, h, h], requiresGrad: true)
        let yFull = syncBatchNorm2d(full, weight: w, bias: b, runningMean: Tensor(zeros: [c]), runningVar: Tensor(repeating: 1, shape: [c]),
                                    momentum: 0.1, eps: 1e-5, sum: { recorded.append(Array($0)) })
        (yFull * Tensor(gv, shape: [n, c, h, h])).sum().backward()
        XCTAssertEqual(recorded.count, 3)
        var call = 0
        let per = c * h * h
        let part = Tensor(Array(xv[0..<per]), shape: [1, c, h, h], requiresGrad: true)
        let yPart = syncBatchNorm2d(part, weight: w, bias: b, runningMean: Tensor(zeros: [c]), runningVar: Tensor(repeating: 1, shape: [c]),
                                    momentum: 0.1, eps: 1e-5, sum: { buf in
            for i in buf.indices { buf[i] = recorded[call][i] }
            call += 1
        })
        (yPart * Tensor(Array(gv[0..<per]), shape: [1, c, h, h])).sum().backward()
        close(yPart.scalars, Array(r.y[0..<per]), "rank 0's y")
        close(part.grad!.scalars, Array(r.dx[0..<per]), "rank 0's dx")
    }
}
