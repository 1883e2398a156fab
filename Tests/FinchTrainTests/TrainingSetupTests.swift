import XCTest
import Foundation
import FinchTestSupport
import FinchTensor
import FinchIO
import FinchData
import FinchNN
@testable import FinchTrain

/// `train --config` end to end on a tiny ImageFolder: validation before the first step, then a
/// real epoch leaving checkpoints and run files.
final class TrainingSetupTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-setup-\(UUID().uuidString)")
        try TinyImageFolder.make(under: base)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    func yaml(_ extra: String = "") -> String {
        """
        experiment: tiny
        data: {root: data, image_size: 32, batch_size: 2}
        model: {name: mobilenetv3_small_100}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {epochs: 1, warmup_epochs: 0}
        \(extra)
        """
    }

    func testOneEpochFromConfigLeavesCheckpointsAndRunFiles() throws {
        let c = try TrainConfig.parse(yaml(), source: "tiny.yaml")
        let setup = try TrainingSetup(config: c, baseDirectory: base)
        setup.trainer.progress = ProgressReporter(isTerminal: false)
        XCTAssertEqual(setup.classes, ["a", "b"])
        let records = try setup.trainer.fit()
        XCTAssertEqual(records.count, 1)
        XCTAssertNotNil(records[0].values["val/top1"])
        for f in ["last.h5", "best.h5"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: setup.checkpointDirectory.appendingPathComponent(f).path), f)
        }
        for f in ["config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "curves.svg", "confusion.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: setup.runDirectory.appendingPathComponent(f).path), f)
        }
        let ck = try Checkpoint.read(setup.checkpointDirectory.appendingPathComponent("last.h5"))
        XCTAssertEqual(ck.modelName, "mobilenetv3_small_100")
        XCTAssertEqual(ck.classes, ["a", "b"])
        XCTAssertTrue(ck.configYAML.contains("image_size: 32"))
    }

    /// A bad run fails before the first step, naming the key.
    func testBadRunsFailBeforeTraining() {
        let cases: [(String, String)] = [
            ("data: {root: nowhere}", "nowhere: dataset folder not found"),
            ("model: {name: mobilenetv3_small_100, num_classes: 7}", "'model.num_classes': is 7 but"),
            ("model: {name: resnet9000}", "unknown model 'resnet9000'"),
            ("model: {name: mobilenetv3_small_100, pretrained: missing.safetensors}", "'model.pretrained'"),
            ("distill: {teacher: {name: mobilenetv3_small_100, checkpoint: none.h5}}", "'distill.teacher'"),
            ("data: {root: data, auto_augment: rand-q9}", "'data.auto_augment': auto_augment 'rand-q9': unknown section 'q'"),
            ("data: {root: data, auto_augment: autoaug-v0}", "'data.auto_augment'"),
        ]
        for (extra, expected) in cases {
            var text = yaml()
            if extra.hasPrefix("data:") { text = text.replacingOccurrences(of: "data: {root: data, image_size: 32, batch_size: 2}", with: extra) }
            else if extra.hasPrefix("model:") { text = text.replacingOccurrences(of: "model: {name: mobilenetv3_small_100}", with: extra) }
            else { text += "\n" + extra }
            XCTAssertThrowsError(try TrainingSetup(config: try TrainConfig.parse(text, source: "bad.yaml"), baseDirectory: base), extra) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(extra) → \(e)")
            }
        }
    }

    /// timm's `--aa rand-m9-mstd0.5-inc1 --reprob 0.25 --remode pixel` reach the training
    /// transform with timm's fill (the mean in 0…255) and interpolation, and change the batches.
    func testRandAugmentAndRandomErasingAreWiredIn() throws {
        func firstBatch(_ data: String) throws -> (Tensor, DataLoader) {
            let text = yaml().replacingOccurrences(of: "data: {root: data, image_size: 32, batch_size: 2}", with: data)
            let setup = try TrainingSetup(config: try TrainConfig.parse(text, source: "aug.yaml"), baseDirectory: base)
            let loader = (setup.trainer.trainData as! LoaderBatchSource).loader
            let order = try loader.sampler.indices(count: loader.samples.count, epoch: 0, seed: loader.seed)
            return (try loader.batch(0, of: order, epoch: 0).images, loader)
        }
        let (plain, _) = try firstBatch("data: {root: data, image_size: 32, batch_size: 2, color_jitter: 0}")
        let (aug, loader) = try firstBatch("data: {root: data, image_size: 32, batch_size: 2, auto_augment: rand-m9-mstd0.5-inc1-p1, re_prob: 1.0, re_mode: pixel, interpolation: bilinear}")
        let ra = try XCTUnwrap(loader.transform.randAugment)
        XCTAssertEqual(ra.magnitude, 9); XCTAssertEqual(ra.probability, 1); XCTAssertEqual(ra.filter, .bilinear)
        // mobilenetv3_small_100's mean (ImageNet) in 0…255: 124, 116, 104, as timm rounds it.
        XCTAssertTrue(ra.fill == (124, 116, 104), "\(ra.fill)")
        XCTAssertEqual(loader.transform.randomErasing, RandomErasing(probability: 1, mode: .pixel, maxCount: 1))
        XCTAssertEqual(plain.shape, aug.shape)
        XCTAssertNotEqual(plain.scalars, aug.scalars)
    }

    /// `data.train_list` / `data.val_list` replace the folders.
    func testCSVListsDriveTraining() throws {
        var train = "path,label\n", val = ""
        for split in ["train", "val"] {
            for c in ["a", "b"] {
                for f in try FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent("data/\(split)/\(c)").path).sorted() {
                    if split == "train" { train += "data/\(split)/\(c)/\(f),\(c)\n" } else { val += "data/\(split)/\(c)/\(f),\(c)\n" }
                }
            }
        }
        try train.write(to: base.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        try val.write(to: base.appendingPathComponent("val.csv"), atomically: true, encoding: .utf8)
        let text = yaml().replacingOccurrences(of: "data: {root: data, image_size: 32, batch_size: 2}",
                                               with: "data: {train_list: train.csv, val_list: val.csv, image_size: 32, batch_size: 2}")
        let setup = try TrainingSetup(config: try TrainConfig.parse(text, source: "list.yaml"), baseDirectory: base)
        XCTAssertEqual(setup.classes, ["a", "b"])
        XCTAssertEqual((setup.trainer.trainData as! LoaderBatchSource).loader.samples.count, 6)
        let bad = yaml().replacingOccurrences(of: "data: {root: data, image_size: 32, batch_size: 2}", with: "data: {train_list: nope.csv}")
        XCTAssertThrowsError(try TrainingSetup(config: try TrainConfig.parse(bad, source: "bad.yaml"), baseDirectory: base)) {
            XCTAssertTrue("\($0)".contains("'data.train_list'") && "\($0)".contains("nope.csv"), "\($0)")
        }
    }

    /// `model.head_init: zeros` starts the classifier at zero; the default keeps timm's init.
    func testHeadInitZeros() throws {
        func classifier(_ extra: String) throws -> [Float] {
            let text = yaml().replacingOccurrences(of: "model: {name: mobilenetv3_small_100}", with: "model: {name: mobilenetv3_small_100\(extra)}")
            let setup = try TrainingSetup(config: try TrainConfig.parse(text, source: "h.yaml"), baseDirectory: base)
            let m = setup.trainer.model
            return m.namedParameters().filter { Module.matches($0.name, prefixes: m.classifierPrefixes) }.flatMap { $0.tensor.scalars }
        }
        let zeros = try classifier(", head_init: zeros")
        XCTAssertFalse(zeros.isEmpty)
        XCTAssertTrue(zeros.allSatisfy { $0 == 0 })
        XCTAssertTrue(try classifier("").contains { $0 != 0 })
    }
}
