import XCTest
@testable import FinchTrain

final class TrainConfigTests: XCTestCase {
    let minimal = """
    experiment: flowers-lite0
    data: {root: Datasets/flowers, image_size: 128, batch_size: 32}
    model: {name: tf_efficientnet_lite0, pretrained: Checkpoints/tf_efficientnet_lite0.safetensors}
    optimizer: {name: adamw, lr: 3.0e-4, weight_decay: 0.05, layer_lr: {conv_stem: 1.0e-5, classifier: 5.0e-5}}
    schedule: {epochs: 10, warmup_epochs: 1}
    """

    func testDefaultsAreTimmsTrainScriptDefaults() throws {
        let c = try TrainConfig.parse(minimal, source: "t.yaml")
        XCTAssertEqual(c.seed, 42)
        XCTAssertEqual(c.data.hflip, 0.5)
        XCTAssertEqual(c.data.scale, [0.08, 1.0])
        XCTAssertEqual(c.data.colorJitter, 0.4)
        XCTAssertEqual(c.mixup.labelSmoothing, 0.1)
        XCTAssertFalse(c.mixup.enabled)
        XCTAssertEqual(c.schedule.name, .cosine)
        XCTAssertEqual(c.schedule.warmupLR, 1e-5)
        XCTAssertEqual(c.checkpoint.monitor, "val/top1")
        XCTAssertNil(c.distill)
        XCTAssertEqual(c.optimizer.layerLR.map(\.0), ["conv_stem", "classifier"])
        XCTAssertEqual(c.effectiveLR, 3e-4)
        // The resolved config names every default.
        XCTAssertTrue(c.resolvedYAML.contains("color_jitter: 0.4"), c.resolvedYAML)
        XCTAssertTrue(c.resolvedYAML.contains("label_smoothing: 0.1"))
        XCTAssertTrue(c.resolvedYAML.contains("distill: null"))
        // And reads back to the same values.
        let again = try TrainConfig.parse(c.resolvedYAML, source: "resolved.yaml")
        XCTAssertEqual(again.resolvedYAML, c.resolvedYAML)
    }

    func testLearningRateFollowsTimmsBaseScaling() throws {
        let sgd = try TrainConfig.parse("data: {root: d, batch_size: 512}\nmodel: {name: m}\n", source: "t")
        XCTAssertEqual(sgd.effectiveLR, 0.2, accuracy: 1e-12)       // linear: 0.1 × 512/256
        let adam = try TrainConfig.parse("data: {root: d, batch_size: 64}\nmodel: {name: m}\noptimizer: {name: adamw, lr_base: 1.0e-3}\n", source: "t")
        XCTAssertEqual(adam.effectiveLR, 5e-4, accuracy: 1e-12)     // sqrt: 1e-3 × √(64/256)
    }

    func testUnknownKeysSuggestTheNearestValidOne() {
        XCTAssertThrowsError(try TrainConfig.parse(minimal + "\nmixup: {mixup_alpah: 0.2}\n", source: "f.yaml")) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("f.yaml: 'mixup.mixup_alpah': unknown key (did you mean 'mixup_alpha'?)"), m)
        }
        XCTAssertThrowsError(try TrainConfig.parse(minimal + "\nchekpoint: {keep: 2}\n", source: "f.yaml")) { e in
            XCTAssertTrue("\(e)".contains("'chekpoint': unknown key (did you mean 'checkpoint'?)"), "\(e)")
        }
    }

    func testWrongTypesAndValuesNameTheKey() {
        let cases: [(String, String)] = [
            ("data: {root: d, batch_size: big}\nmodel: {name: m}", "'data.batch_size': expected an integer, found 'big'"),
            ("data: {root: d, batch_size: 3.5}\nmodel: {name: m}", "'data.batch_size': expected an integer"),
            ("data: {root: d, scale: 0.5}\nmodel: {name: m}", "'data.scale': expected a list of numbers"),
            ("data: {root: d, scale: [0.5]}\nmodel: {name: m}", "'data.scale': expected 2 numbers, found 1"),
            ("data: {root: d, hflip: 2}\nmodel: {name: m}", "'data.hflip': must be in [0.0, 1.0], got 2.0"),
            ("data: {root: d}\nmodel: {name: m}\nfinetune: {mode: heads}", "'finetune.mode': 'heads' is not one of full, head, partial (did you mean 'head'?)"),
            ("data: {root: d}\nmodel: {name: m}\nfinetune: {mode: partial}", "'finetune.unfreeze': partial fine-tuning needs"),
            ("data: {root: d}\nmodel: m", "'model': expected a mapping of keys, found 'm'"),
            ("model: {name: m}", "'data.root': is required"),
            ("data: {root: d}\nmodel: {name: m}\ndistill: {alpha: 0.5}", "'distill.teacher.name': is required"),
            ("data: [1, 2", "is not valid YAML"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try TrainConfig.parse(yaml, source: "c.yaml"), yaml) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(yaml)\n→ \(e)")
            }
        }
    }

    func testSetOverridesKeepTypesAndCreateSections() throws {
        let c = try TrainConfig.parse(minimal, source: "t", overrides: [
            "optimizer.lr=1e-4", "data.scale=[0.5, 1.0]", "mixup.cutmix_alpha=1.0", "seed=7",
            "distill.teacher.name=tf_efficientnet_lite2", "distill.teacher.checkpoint=Checkpoints/t/best.h5",
        ])
        XCTAssertEqual(c.optimizer.lr, 1e-4)
        XCTAssertEqual(c.data.scale, [0.5, 1.0])
        XCTAssertTrue(c.mixup.enabled)
        XCTAssertEqual(c.seed, 7)
        XCTAssertEqual(c.distill?.teacher.name, "tf_efficientnet_lite2")
        XCTAssertEqual(c.distill?.alpha, 0.5)
        XCTAssertThrowsError(try TrainConfig.parse(minimal, source: "t", overrides: ["optimizer.lrr=1"])) {
            XCTAssertTrue("\($0)".contains("did you mean 'lr'"), "\($0)")
        }
        XCTAssertThrowsError(try TrainConfig.parse(minimal, source: "t", overrides: ["seed"])) {
            XCTAssertTrue("\($0)".contains("expected key.path=value"))
        }
        XCTAssertThrowsError(try TrainConfig.parse(minimal, source: "t", overrides: ["experiment.x=1"])) {
            XCTAssertTrue("\($0)".contains("inside a value"), "\($0)")
        }
    }

    /// Every shipped experiment config parses and validates (data and weights are checked at setup).
    func testShippedExperimentConfigsParse() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Experiments").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(Set(files).isSuperset(of: ["flowers.yaml", "flowers-head.yaml", "flowers-partial.yaml", "flowers-mixup.yaml",
                                                 "flowers-teacher-lite2-224.yaml", "flowers-distill.yaml",
                                                 "flowers-imbalanced-plain.yaml", "flowers-imbalanced-weighted.yaml"]), "\(files)")
        // The results table compares rows at one budget: every student row (head-only too) trains
        // as long as the full row, and the teacher no shorter (run_table.sh runs them without an epochs override).
        let fullEpochs = try TrainConfig.load(dir.appendingPathComponent("flowers.yaml")).schedule.epochs
        XCTAssertEqual(fullEpochs, 6)
        for f in files {
            let c = try TrainConfig.load(dir.appendingPathComponent(f))
            XCTAssertFalse(c.model.name.isEmpty, f)
            if f.hasPrefix("flowers-distill") || f.hasPrefix("flowers-imbalanced") || f == "flowers-mixup.yaml"
                || f == "flowers-head.yaml" {
                XCTAssertEqual(c.schedule.epochs, fullEpochs, f)
            }
            if f.hasPrefix("flowers-teacher") { XCTAssertGreaterThanOrEqual(c.schedule.epochs, fullEpochs, f) }
            if f == "flowers-head.yaml" { XCTAssertEqual(c.finetune.mode, .head) }
            if f == "flowers-partial.yaml" { XCTAssertEqual(c.finetune.mode, .partial); XCTAssertFalse(c.finetune.unfreeze.isEmpty) }
            if f == "flowers-distill.yaml" { XCTAssertEqual(c.distill?.alpha, 0.5); XCTAssertEqual(c.distill?.teacher.name, "tf_efficientnet_lite2") }
            // The students stay at 128 px and distil from the teacher at its 224.
            if f.hasPrefix("flowers-distill") { XCTAssertEqual(c.distill?.teacher.imageSize, 224, f); XCTAssertEqual(c.data.imageSize, 128, f) }
            if f == "flowers-teacher-lite2-224.yaml" { XCTAssertEqual(c.data.imageSize, 224) }
            if f == "flowers-mixup.yaml" { XCTAssertTrue(c.mixup.enabled); XCTAssertNotNil(c.data.autoAugment) }
            if f.hasPrefix("flowers-imbalanced") {
                XCTAssertEqual(c.data.classLimits.map(\.1), [600, 400, 150, 100, 50], f)
                XCTAssertEqual(c.data.sampler, f.contains("weighted") ? .weighted : .random, f)
            }
        }
    }
}
