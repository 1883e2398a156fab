import XCTest
import Foundation
import FinchTestSupport
@testable import FinchTrain

/// `finch config from-timm`: a timm 1.0 `args.yaml` (Tests/Fixtures/timm/args.yaml, written with
/// timm's own key names and defaults) becomes a Finch config that loads, with every option Finch
/// lacks listed; files that are not a timm args.yaml are refused as such.
final class FromTimmTests: XCTestCase {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/timm/args.yaml").standardized

    func testTimmArgsBecomeAFinchConfigThatLoads() throws {
        let text = try String(contentsOf: fixture, encoding: .utf8)
        let r = try TimmArgsConversion.convert(text, source: "args.yaml")
        XCTAssertNil(r.loadProblem, r.loadProblem ?? "")
        let c = try TrainConfig.parse(r.yaml, source: "converted.yaml")
        XCTAssertEqual(c.experiment, "flowers-timm")
        XCTAssertEqual(c.data.root, "flowers")
        XCTAssertEqual(c.data.valSplit, "validation")
        XCTAssertEqual(c.data.imageSize, 224)
        XCTAssertEqual(c.data.batchSize, 32)
        XCTAssertEqual(c.data.workers, 4)
        XCTAssertEqual(c.data.autoAugment, "rand-m9-mstd0.5-inc1")
        XCTAssertEqual(c.data.reProb, 0.25)
        XCTAssertEqual(c.data.interpolation, .random)
        XCTAssertEqual(c.model.name, "tf_efficientnet_lite0")
        XCTAssertEqual(c.model.numClasses, 5)
        XCTAssertEqual(c.model.pretrained, "Checkpoints/tf_efficientnet_lite0.safetensors")
        XCTAssertEqual(c.model.dropRate, 0.2)
        XCTAssertEqual(c.model.dropPathRate, 0.1)
        XCTAssertEqual(c.optimizer.name, .adamw)
        XCTAssertEqual(c.optimizer.lr, 5e-4)
        XCTAssertEqual(c.optimizer.weightDecay, 0.05)
        XCTAssertEqual(c.optimizer.layerDecay, 0.75)
        XCTAssertEqual(c.optimizer.clipGrad, 1.0)
        XCTAssertNil(c.optimizer.betas, "opt_betas: null keeps Finch's default")
        XCTAssertEqual(c.schedule.name, .cosine)
        XCTAssertEqual(c.schedule.epochs, 30)
        XCTAssertEqual(c.schedule.warmupEpochs, 3)
        XCTAssertEqual(c.schedule.warmupLR, 1e-5)
        XCTAssertEqual(c.schedule.minLR, 1e-6)
        XCTAssertEqual(c.mixup.mixupAlpha, 0.8)
        XCTAssertEqual(c.mixup.cutmixAlpha, 1.0)
        XCTAssertEqual(c.mixup.labelSmoothing, 0.1)
        XCTAssertEqual(c.ema?.decay, 0.9998)
        XCTAssertEqual(c.ema?.warmup, true)
        XCTAssertEqual(c.checkpoint.keep, 3)
        XCTAssertEqual(c.checkpoint.monitor, "val/top1")
        XCTAssertEqual(c.seed, 42)
        // Left out, and said so: colour jitter (timm ignores it under aa); options at timm's inert
        // values (amp: false, cooldown_epochs: 0, lr_noise_pct: 0.67) are not noise in the list.
        XCTAssertEqual(r.skipped.map(\.key), ["color_jitter"])
        XCTAssertTrue(r.yaml.contains("#   color_jitter: 0.3  (not used with aa, as in timm)"), r.yaml)
        XCTAssertTrue(r.notes.first?.contains("pretrained: true") == true)
        XCTAssertEqual(r.unknown, [])
    }

    func testOptionsWithoutEquivalentAndUnknownKeysAreListed() throws {
        var text = try String(contentsOf: fixture, encoding: .utf8)
        text = text.replacingOccurrences(of: "cooldown_epochs: 0", with: "cooldown_epochs: 10")
            .replacingOccurrences(of: "opt: adamw", with: "opt: lamb")
            .replacingOccurrences(of: "channels_last: false", with: "channels_last: true")
            .replacingOccurrences(of: "model_ema: true", with: "model_ema: false") + "my_flag: 3\n"
        let r = try TimmArgsConversion.convert(text, source: "args.yaml")
        let skipped = Dictionary(uniqueKeysWithValues: r.skipped.map { ($0.key, $0.reason) })
        XCTAssertEqual(skipped["cooldown_epochs"], "no Finch equivalent")
        XCTAssertEqual(skipped["channels_last"], "no Finch equivalent")
        XCTAssertEqual(skipped["opt"]?.hasPrefix("Finch has sgd"), true)
        XCTAssertEqual(skipped["model_ema_decay"], "model_ema is off")
        XCTAssertEqual(r.unknown, ["my_flag"])
        let c = try TrainConfig.parse(r.yaml, source: "converted.yaml")
        XCTAssertNil(c.ema)
        XCTAssertEqual(c.optimizer.name, .sgd, "an optimizer Finch lacks leaves Finch's default")
    }

    func testFilesThatAreNotTimmArgsAreRefusedAsSuch() throws {
        let flowers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Experiments/flowers.yaml").standardized
        let finchConfig = try String(contentsOf: flowers, encoding: .utf8)
        let cases: [(String, String)] = [
            (finchConfig, "is a Finch config (sections data, model"),
            ("{a: 1, b: 2}", "is not a timm args.yaml: it has 0 of timm's train.py options and no 'model'"),
            ("- 1\n- 2\n", "is not a timm args.yaml: expected the flat mapping of train.py options timm writes, found a list"),
            ("model: resnet18\nlr: 0.1\n", "is not a timm args.yaml: it has 2 of timm's train.py options"),
            ("a: [\n", "is not a timm args.yaml: not valid YAML"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TimmArgsConversion.convert(text, source: "x.yaml"), text) { e in
                XCTAssertTrue("\(e)".hasPrefix("x.yaml: "), "\(e)")
                XCTAssertTrue("\(e)".contains(expected), "\(e)\nexpected: \(expected)")
            }
        }
    }

    /// The command writes the config and lists what it left out; on a Finch config it says what the file is.
    func testCommandWritesTheConfigAndRefusesAFinchConfig() throws {
        let finch = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/finch").standardized
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-timm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("flowers.yaml")
        let r = ChildProcess.run(finch, ["config", "from-timm", fixture.path, "--output", out.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("color_jitter: 0.3  (not used with aa, as in timm)"), r.output)
        XCTAssertEqual(try TrainConfig.load(out).optimizer.name, .adamw)
        // Given to train as it is, timm's file is refused with the way to convert it.
        let train = finch.deletingLastPathComponent().appendingPathComponent("train")
        let direct = ChildProcess.run(train, ["--config", fixture.path])
        XCTAssertNotEqual(direct.status, 0)
        XCTAssertTrue(direct.output.contains("this is a timm args.yaml: convert it with `finch config from-timm"), direct.output)
        let refused = ChildProcess.run(finch, ["config", "from-timm", out.path])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("is a Finch config"), refused.output)
    }
}
