import XCTest
import Foundation
import FinchTensor
import FinchTestSupport
import FinchIO
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
}
