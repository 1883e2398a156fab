import XCTest
import Foundation
import FinchTensor
import FinchTestSupport
import FinchIO
import FinchNN
@testable import FinchTrain

/// The `finch` executable's outputs that scripts consume (Experiments/run_table.sh): evaluate's
/// JSON and saved inputs/logits, and ncm's JSON.
final class FinchCommandTests: XCTestCase {
    var base: URL!
    var binaries: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug").standardized }

    override func setUpWithError() throws {
        for b in ["train", "finch"] {
            XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binaries.appendingPathComponent(b).path), "\(b) is not built")
        }
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-cli-\(UUID().uuidString)")
        try TinyImageFolder.make(under: base)
    }
    override func tearDownWithError() throws { if let base { try? FileManager.default.removeItem(at: base) } }

    @discardableResult
    func run(_ binary: String, _ args: [String]) throws -> String {
        let r = ChildProcess.run(binaries.appendingPathComponent(binary), args, in: base)
        XCTAssertEqual(r.status, 0, "\(binary) \(args.joined(separator: " ")):\n\(r.output)")
        return r.output
    }

    func json(_ name: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: base.appendingPathComponent(name))) as? [String: Any])
    }

    func testEvaluateSavesTheInputsItScoredAndNcmWritesItsSummary() throws {
        try """
        experiment: cli
        seed: 3
        data: {root: data, image_size: 32, batch_size: 2, workers: 0}
        model: {name: mobilenetv3_small_100}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {name: cosine, epochs: 1, warmup_epochs: 0}
        """.write(to: base.appendingPathComponent("cli.yaml"), atomically: true, encoding: .utf8)
        try run("train", ["--config", "cli.yaml"])
        let ck = "Checkpoints/cli/latest/last.h5"
        try run("finch", ["evaluate", "--checkpoint", ck, "--data", "data", "--json", "m.json", "--save-outputs", "o.safetensors"])

        // The saved logits are the model's on the saved inputs, and the JSON's top-1 is theirs.
        let saved = try SafeTensorsFile(contentsOf: base.appendingPathComponent("o.safetensors"))
        let x = try saved.tensor("input"), logits = try saved.tensor("logits"), labels = try saved.int64s("labels").map(Int.init)
        XCTAssertEqual(x.shape, [4, 3, 32, 32])
        XCTAssertEqual(logits.shape, [4, 2])
        XCTAssertEqual(labels, [0, 0, 1, 1])
        let m = try ModelExport.load(base.appendingPathComponent(ck))
        let again = noGrad { m.model(x) }.scalars
        for (a, b) in zip(again, logits.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let predicted = (0..<4).map { logits.scalars[2 * $0 + 1] > logits.scalars[2 * $0] ? 1 : 0 }
        let top1 = Double(zip(predicted, labels).filter { $0 == $1 }.count) / 4
        let metrics = try json("m.json")
        XCTAssertEqual(metrics["top1"] as? Double, top1)
        XCTAssertEqual(metrics["images"] as? Int, 4)
        XCTAssertNotNil(metrics["balanced_accuracy"] as? Double)
        XCTAssertGreaterThan(try XCTUnwrap(metrics["img_per_s"] as? Double), 0)

        try run("finch", ["ncm", "--weights", ck, "--data", "data", "--resolution", "32", "--json", "n.json"])
        let ncm = try json("n.json")
        let final = try XCTUnwrap(ncm["final"] as? [String: Double])
        XCTAssertNotNil(final["val/top1"])
        XCTAssertEqual(ncm["train_images"] as? Int, 6)
        XCTAssertEqual(ncm["epochs_run"] as? Int, 0)
        XCTAssertEqual(ncm["parameters"] as? Int, m.model.parameterCount - 1024 * 2 - 2, "the head is not counted")
    }

    /// Nonsense numbers on the command line or in `--set` stop the command before any work, with
    /// the usage exit code (64) and a message naming the option and the value.
    func testBadOptionsExitWithAMessage() throws {
        try "experiment: cli\ndata: {root: data, image_size: 32, batch_size: 2}\nmodel: {name: mobilenetv3_small_100}\n"
            .write(to: base.appendingPathComponent("cli.yaml"), atomically: true, encoding: .utf8)
        let cases: [(String, [String], String)] = [
            ("finch", ["predict", "--checkpoint", "x.h5", "--top-k", "0", "a.jpg"], "--top-k must be in 1…100000, got 0"),
            ("finch", ["evaluate", "--checkpoint", "x.h5", "--data", "data", "--batch", "0"], "--batch must be in 1…65536, got 0"),
            ("finch", ["evaluate", "--checkpoint", "x.h5", "--data", "data", "--batch", "10000000"], "--batch must be in 1…65536, got 10000000"),
            ("finch", ["ncm", "--weights", "x.h5", "--data", "data", "--resolution", "0"], "--resolution must be in 8…4096, got 0"),
            ("finch", ["ncm", "--weights", "x.h5", "--data", "data", "--workers=-1"], "--workers must be in 0…256, got -1"),
            ("finch", ["export", "--checkpoint", "x.h5", "--format", "onnx", "--output", "o.onnx", "--num-classes", "0"], "--num-classes must be in 1…100000, got 0"),
            ("finch", ["bench", "model", "--model", "mobilenetv3_small_100", "--threads", "0"], "--threads must be in 1…256, got 0"),
            ("finch", ["bench", "model", "--model", "mobilenetv3_small_100", "--steps", "0"], "--steps must be in 1…1000000, got 0"),
            ("finch", ["bench", "model", "--model", "mobilenetv3_small_100", "--resolution", "99999"], "--resolution must be in 16…4096, got 99999"),
            ("finch", ["bench", "data", "--data", "data", "--batch=-1"], "--batch must be in 1…65536, got -1"),
            ("finch", ["bench", "data", "--data", "data", "--epochs", "0"], "--epochs must be in 1…1000, got 0"),
            ("finch", ["bench", "kernels", "--batch", "100000"], "--batch must be in 1…1024, got 100000"),
            ("finch", ["bench", "kernels", "--sizes", "256", "--sizes", "100000"], "--sizes must be in 1…8192, got 100000"),
            ("finch", ["bench", "kernels", "--repeats", "0"], "--repeats must be in 1…1000, got 0"),
            ("finch", ["bench", "distributed", "--model", "resnet18", "--warmup=-1"], "--warmup must be in 0…1000000, got -1"),
            ("finch", ["inspect", "x.h5", "--max", "0"], "--max must be in 1…1000000, got 0"),
            ("finch", ["demo", "spiral", "--points=-5"], "--points must be in 1…100000, got -5"),
            ("finch", ["demo", "spiral", "--hidden", "99999999"], "--hidden must be in 1…4096, got 99999999"),
            ("finch", ["demo", "spiral", "--lr", "nan"], "--lr must be in (0, 100], got nan"),
            ("train", ["--config", "cli.yaml", "--set", "optimizer..lr=1"], "'optimizer..lr': empty key in the path"),
            ("train", ["--config", "cli.yaml", "--set", "data.image_size=0"], "'data.image_size': must be ≥ 8, got 0"),
            ("train", ["--config", "cli.yaml", "--set", "optimzer.lr=1"], "'optimzer': unknown key (did you mean 'optimizer'?)"),
            ("train", ["--config", "cli.yaml", "--set", "checkpoint.monitor=val_acuracy"], "(did you mean 'val/top1'?)"),
        ]
        for (binary, args, expected) in cases {
            let r = ChildProcess.run(binaries.appendingPathComponent(binary), args, in: base)
            XCTAssertEqual(r.status, 64, "\(binary) \(args.joined(separator: " ")):\n\(r.output)")
            XCTAssertTrue(r.output.contains(expected), "\(binary) \(args.joined(separator: " ")):\n\(r.output)\nexpected: \(expected)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("Experiments").path), "no run folder for a refused config")
    }

    /// Off a terminal, `log_interval` gives one plain line every that many batches.
    func testLogIntervalPrintsStepLinesOffATerminal() throws {
        try """
        experiment: log
        log_interval: 1
        data: {root: data, image_size: 32, batch_size: 2, workers: 0}
        model: {name: mobilenetv3_small_100}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {name: constant, epochs: 1, warmup_epochs: 0}
        """.write(to: base.appendingPathComponent("log.yaml"), atomically: true, encoding: .utf8)
        let out = try run("train", ["--config", "log.yaml"])
        for step in 1...3 { XCTAssertTrue(out.contains("epoch 1/1 step \(step)/3 (global \(step)) loss "), out) }
        XCTAssertTrue(out.contains("lr 1.00e-03"), out)
    }

    /// `finch bench --model` prices its steps in GFLOP/s from the model's own FLOP count beside raw
    /// sgemm's, on lines compare_pytorch.py parses.
    func testBenchModelPrintsGFLOPsBesideSgemm() throws {
        let out = try run("finch", ["bench", "--model", "mobilenetv3_small_100", "--resolution", "32", "--batch", "2",
                                    "--steps", "1", "--warmup", "0", "--threads", "1", "--num-classes", "10"])
        let lines = out.split(separator: "\n").map(String.init)
        func field(_ line: String, _ key: String) throws -> Double {
            let part = try XCTUnwrap(line.split(separator: " ").first { $0.hasPrefix(key + "=") }, "\(key) in \(line)")
            return try XCTUnwrap(Double(part.dropFirst(key.count + 1)), "\(key) in \(line)")
        }
        let last = try XCTUnwrap(lines.last)
        XCTAssertTrue(last.hasPrefix("train images/s="), out)
        let gflops = try XCTUnwrap(lines.dropLast().last, out)
        XCTAssertTrue(gflops.hasPrefix("gflops: "), out)
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 10)
        let flops = ForwardFLOPs(counting: model, inputShape: [3, 32, 32])
        XCTAssertEqual(try field(gflops, "forward_flop_per_image"), Double(flops.total))
        XCTAssertEqual(try field(gflops, "conv_flop") + field(gflops, "matmul_flop"), Double(flops.total))
        // The last line: `train images/s=T eval images/s=E peak_rss_mib=M`.
        let words = last.split(separator: " ")
        let trainRate = try XCTUnwrap(Double(words[1].dropFirst("images/s=".count)), last)
        let evalRate = try XCTUnwrap(Double(words[3].dropFirst("images/s=".count)), last)
        XCTAssertGreaterThan(trainRate, 0)
        XCTAssertGreaterThan(evalRate, 0)
        // Both sides are rounded for print (rates to 0.1, GFLOP/s to 0.01).
        let trainGF = 3 * Double(flops.total) * trainRate / 1e9, evalGF = Double(flops.total) * evalRate / 1e9
        XCTAssertEqual(try field(gflops, "train_gflops"), trainGF, accuracy: 0.006 + 0.05 * trainGF)
        let eval = try field(gflops, "eval_gflops")
        XCTAssertEqual(eval, evalGF, accuracy: 0.006 + 0.05 * evalGF)
        let sgemm = try field(gflops, "sgemm_gflops")
        XCTAssertGreaterThan(sgemm, 0.5, "a 512³ sgemm below 0.5 GFLOP/s is not a measurement")
        XCTAssertEqual(try field(gflops, "eval_fraction"), eval / sgemm, accuracy: 0.002)
        XCTAssertEqual(try field(gflops, "sgemm_n"), 512)
    }

    /// Benchmarks/compare_pytorch.py reads the real `finch bench` output (this debug build) and a
    /// stand-in PyTorch side with fixed figures, so the table's ratios, latency and GFLOP/s columns
    /// are checked against numbers known here. Batch 1 runs eval only.
    func testComparePyTorchSweepTablesFinchBesideTheOtherSide() throws {
        guard try PythonTools.available(["statistics"]) else { return }
        let stub = base.appendingPathComponent("torch_stub.py")
        try """
        import sys
        print("model=stub cpu_capability=STUB")
        print(f"train images/s={0.0 if '--eval-only' in sys.argv else 10.0} eval images/s=20.0 peak_rss_mib=1000.0")
        """.write(to: stub, atomically: true, encoding: .utf8)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Benchmarks/compare_pytorch.py").standardized
        let md = base.appendingPathComponent("table.md")
        let r = PythonTools.run([script.path, "--sweep", "--models", "mobilenetv3_small_100", "--batches", "1", "2",
                                 "--resolutions", "32", "--rounds", "1", "--steps", "1", "--warmup", "0", "--threads", "1",
                                 "--finch", binaries.appendingPathComponent("finch").path, "--pytorch-bench", stub.path,
                                 "--markdown", md.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("2 configurations × 1 rounds × 2 sides = 4 runs, estimated"), r.output)
        XCTAssertTrue(r.output.contains("[4/4]"), r.output)
        let text = try String(contentsOf: md, encoding: .utf8)
        XCTAssertTrue(text.contains("PyTorch cpu_capability=STUB"), text)
        XCTAssertTrue(text.contains("Command: `python3 Benchmarks/compare_pytorch.py --sweep --models mobilenetv3_small_100"), text)
        func row(_ prefix: String) throws -> [String] {
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix(prefix) }, "\(prefix) in\n\(text)")
            return line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        // model, px, batch, Finch train, PyTorch train, ratio, Finch eval, PyTorch eval, ratio, Finch MiB, PyTorch MiB, ratio
        let b1 = try row("| mobilenetv3_small_100 | 32 | 1 |"), b2 = try row("| mobilenetv3_small_100 | 32 | 2 |")
        XCTAssertEqual(Array(b1[3...5]), ["–", "–", "–"], "batch 1 does not train")
        XCTAssertEqual(b2[4], "10.0")
        let ft = try XCTUnwrap(Double(b2[3])), fe = try XCTUnwrap(Double(b2[6])), fm = try XCTUnwrap(Double(b2[9]))
        XCTAssertEqual(b2[5], String(format: "%.2f×", ft / 10))
        XCTAssertEqual(b2[8], String(format: "%.2f×", fe / 20))
        XCTAssertEqual(b2[11], String(format: "%.2f×", fm / 1000))
        // Latency: model, px, Finch ms, PyTorch ms (1000 / 20 images/s), PyTorch ÷ Finch.
        let latency = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("| mobilenetv3_small_100 | 32 | ") && $0.split(separator: "|").count == 5 }, text)
        let l = latency.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(l[3], "50.00")
        let b1eval = try XCTUnwrap(Double(b1[6])), finchMs = try XCTUnwrap(Double(l[2]))
        XCTAssertEqual(finchMs, 1000 / b1eval, accuracy: 0.01 + 1000 / b1eval * 0.002)
        XCTAssertTrue(l[4].hasSuffix("×"), String(latency))
        XCTAssertEqual(try XCTUnwrap(Double(l[4].dropLast())), 50 / finchMs, accuracy: 0.011 + 50 / finchMs * 0.002)
        // GFLOP/s: Finch's count prices both sides; PyTorch's train figure is 3 × count × 10 images/s.
        let flops = ForwardFLOPs(counting: try ModelRegistry.create("mobilenetv3_small_100", numClasses: 1000), inputShape: [3, 32, 32])
        let g = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("| mobilenetv3_small_100 | 32 | 2 | ") && $0.split(separator: "|").count == 11 }, text)
            .split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(g[3], String(format: "%.4g", Double(flops.total) / 1e9))
        let perImage = Double(flops.total) / 1e9
        XCTAssertEqual(g[5], String(format: "%.1f", 3 * perImage * 10))
    }
}
