import XCTest
@testable import FinchTrain

/// Every number a config can hold is checked where it is read: zero, negative, NaN, infinity and
/// absurd sizes each give a message naming the key and the value.
final class ConfigBoundaryTests: XCTestCase {
    /// `section` (or "" for the top level) gets `entry` added to a minimal valid config.
    func text(_ section: String, _ entry: String) -> String {
        var sections = ["data": "root: d", "model": "name: m"]
        if section.isEmpty { return "data: {root: d}\nmodel: {name: m}\n\(entry)\n" }
        sections[section] = (sections[section].map { $0 + ", " } ?? "") + entry
        return sections.sorted { $0.key < $1.key }.map { "\($0.key): {\($0.value)}" }.joined(separator: "\n") + "\n"
    }

    func assertRefused(_ yaml: String, _ expected: String, overrides: [String] = [], line: UInt = #line) {
        XCTAssertThrowsError(try TrainConfig.parse(yaml, source: "c.yaml", overrides: overrides), yaml, line: line) { e in
            XCTAssertTrue("\(e)".contains(expected), "\(yaml) \(overrides)\n→ \(e)\nexpected: \(expected)", line: line)
        }
    }

    func testIntegersAreBoundedOnBothSides() {
        let cases: [(String, String, String)] = [
            ("data", "image_size: 0", "'data.image_size': must be ≥ 8, got 0"),
            ("data", "image_size: -224", "'data.image_size': must be ≥ 8, got -224"),
            ("data", "image_size: 100000", "'data.image_size': must be ≤ 4096, got 100000"),
            ("data", "image_size: .nan", "'data.image_size': expected an integer, found '.nan'"),
            ("data", "image_size: 1e9", "'data.image_size': expected an integer"),
            ("data", "batch_size: 0", "'data.batch_size': must be ≥ 1, got 0"),
            ("data", "batch_size: 99999999", "'data.batch_size': must be ≤ 65536, got 99999999"),
            ("data", "workers: -1", "'data.workers': must be ≥ 0, got -1"),
            ("data", "workers: 5000", "'data.workers': must be ≤ 256"),
            ("data", "num_samples: 0", "'data.num_samples': must be ≥ 1, got 0"),
            ("data", "num_samples: 99999999999999", "'data.num_samples': must be ≤ 1000000000"),
            ("data", "re_count: 0", "'data.re_count': must be ≥ 1, got 0"),
            ("data", "re_count: 100000", "'data.re_count': must be ≤ 64"),
            ("data", "max_image_pixels: 0", "'data.max_image_pixels': must be ≥ 1, got 0"),
            ("data", "max_image_pixels: 99999999999", "'data.max_image_pixels': must be ≤ 2147483648"),
            ("data", "max_image_bytes: -5", "'data.max_image_bytes': must be ≥ 1, got -5"),
            ("data", "max_jpeg_scans: 1000000", "'data.max_jpeg_scans': must be ≤ 100000"),
            ("", "seed: -1", "'seed': must be ≥ 0, got -1"),
            ("", "seed: 99999999999", "'seed': must be ≤ 4294967295"),
            ("", "log_interval: 0", "'log_interval': must be ≥ 1, got 0"),
            ("model", "num_classes: 0", "'model.num_classes': must be ≥ 1, got 0"),
            ("model", "num_classes: 10000000", "'model.num_classes': must be ≤ 100000"),
            ("schedule", "epochs: 0", "'schedule.epochs': must be ≥ 1, got 0"),
            ("schedule", "epochs: 10000000", "'schedule.epochs': must be ≤ 100000"),
            ("schedule", "warmup_epochs: -1", "'schedule.warmup_epochs': must be ≥ 0, got -1"),
            ("schedule", "decay_milestones: [0, 10]", "'schedule.decay_milestones': items must be ≥ 1, got 0"),
            ("schedule", "decay_milestones: [1.5]", "'schedule.decay_milestones': expected a list of integers"),
            ("schedule", "name: multistep, decay_milestones: [30, 10]", "'schedule.decay_milestones': [30, 10] must be increasing"),
            ("optimizer", "accumulation_steps: 0", "'optimizer.accumulation_steps': must be ≥ 1, got 0"),
            ("optimizer", "accumulation_steps: 100000", "'optimizer.accumulation_steps': must be ≤ 1024"),
            ("checkpoint", "every_steps: 0", "'checkpoint.every_steps': must be ≥ 1, got 0"),
            ("checkpoint", "every: 0", "'checkpoint.every': must be ≥ 1, got 0"),
            ("early_stopping", "patience: 0", "'early_stopping.patience': must be ≥ 1, got 0"),
            ("distill", "teacher: {name: t, checkpoint: t.h5, image_size: 2}", "'distill.teacher.image_size': must be ≥ 8, got 2"),
        ]
        for (section, entry, expected) in cases { assertRefused(text(section, entry), expected) }
    }

    func testNumbersMustBeFiniteAndInRange() {
        let cases: [(String, String, String)] = [
            ("data", "crop_pct: 0", "'data.crop_pct': must be in (0.0, 1.0], got 0.0"),
            ("data", "crop_pct: -0.5", "'data.crop_pct': must be in (0.0, 1.0], got -0.5"),
            ("data", "crop_pct: 1.5", "'data.crop_pct': must be in (0.0, 1.0], got 1.5"),
            ("data", "crop_pct: .nan", "'data.crop_pct': must be a finite number, got nan"),
            ("data", "crop_pct: .inf", "'data.crop_pct': must be a finite number, got inf"),
            ("data", "hflip: .nan", "'data.hflip': must be a finite number, got nan"),
            ("data", "val_fraction: 0", "'data.val_fraction': must be in (0.0, 0.9], got 0.0"),
            ("data", "val_fraction: 1", "'data.val_fraction': must be in (0.0, 0.9], got 1.0"),
            ("data", "re_prob: 1.5", "'data.re_prob': must be in [0.0, 1.0], got 1.5"),
            ("data", "mean: [0.5, .nan, 0.5]", "'data.mean': item 2 must be a finite number, got nan"),
            ("data", "mean: [123.675, 116.28, 103.53]", "'data.mean': item 1 must be in [0.0, 1.0], got 123.675"),
            ("data", "std: [0.2, 0, 0.2]", "'data.std': item 2 must be in (0.0, 1.0], got 0.0"),
            ("data", "std: [0.2, -0.2, 0.2]", "'data.std': item 2 must be in (0.0, 1.0], got -0.2"),
            ("data", "std: [0.2, 0.2]", "'data.std': expected 3 numbers, found 2"),
            ("data", "scale: [0, 1]", "'data.scale': item 1 must be in (0.0, 1.0], got 0.0"),
            ("data", "scale: [0.5, 2]", "'data.scale': item 2 must be in (0.0, 1.0], got 2.0"),
            ("data", "scale: [0.9, 0.1]", "'data.scale': lower bound 0.9 is above upper 0.1"),
            ("data", "ratio: [0, 1]", "'data.ratio': item 1 must be in (0.0, 100.0], got 0.0"),
            ("data", "ratio: [2, 1]", "'data.ratio': lower bound 2.0 is above upper 1.0"),
            ("data", "ratio: [1, .inf]", "'data.ratio': item 2 must be a finite number, got inf"),
            ("data", "class_limits: {a: 0}", "'data.class_limits': 'a' must be in [1.0, 1000000000.0], got 0.0"),
            ("data", "class_limits: {a: 1.0e30}", "'data.class_limits': 'a' must be in [1.0, 1000000000.0]"),
            ("data", "class_limits: {a: 2.5}", "'data.class_limits': 'a' must be a whole number, got 2.5"),
            ("data", "class_limits: {a: .nan}", "'data.class_limits': 'a' must be a finite number, got nan"),
            ("model", "drop_rate: 1.0", "'model.drop_rate': must be in [0.0, 1.0), got 1.0"),
            ("model", "drop_path_rate: -0.1", "'model.drop_path_rate': must be in [0.0, 1.0), got -0.1"),
            ("optimizer", "lr: -1", "'optimizer.lr': must be in [0.0, 10.0], got -1.0"),
            ("optimizer", "lr: .nan", "'optimizer.lr': must be a finite number, got nan"),
            ("optimizer", "lr: .inf", "'optimizer.lr': must be a finite number, got inf"),
            ("optimizer", "weight_decay: -0.05", "'optimizer.weight_decay': must be in [0.0, 10.0], got -0.05"),
            ("optimizer", "betas: [0.9, 1.0]", "'optimizer.betas': item 2 must be in [0.0, 1.0), got 1.0"),
            ("optimizer", "eps: 0", "'optimizer.eps': must be in (0.0, 1.0], got 0.0"),
            ("optimizer", "layer_decay: 0", "'optimizer.layer_decay': must be in (0.0, 1.0], got 0.0"),
            ("optimizer", "layer_decay: 1.5", "'optimizer.layer_decay': must be in (0.0, 1.0], got 1.5"),
            ("optimizer", "clip_grad: 0", "'optimizer.clip_grad': must be in (0.0, 1000000.0], got 0.0"),
            ("optimizer", "layer_lr: {conv_stem: -1}", "'optimizer.layer_lr': 'conv_stem' must be in [0.0, 10.0], got -1.0"),
            ("optimizer", "layer_lr_multiplier: {classifier: .inf}", "'optimizer.layer_lr_multiplier': 'classifier' must be a finite number"),
            ("schedule", "min_lr: .nan", "'schedule.min_lr': must be a finite number, got nan"),
            ("schedule", "warmup_lr: -1", "'schedule.warmup_lr': must be in [0.0, 10.0], got -1.0"),
            ("schedule", "decay_rate: 0", "'schedule.decay_rate': must be in (0.0, 1.0], got 0.0"),
            ("mixup", "label_smoothing: 1.0", "'mixup.label_smoothing': must be in [0.0, 1.0), got 1.0"),
            ("mixup", "mixup_alpha: -1", "'mixup.mixup_alpha': must be in [0.0, 100.0], got -1.0"),
            ("mixup", "cutmix_alpha: .nan", "'mixup.cutmix_alpha': must be a finite number, got nan"),
            ("mixup", "cutmix_minmax: [0.8, 0.2]", "'mixup.cutmix_minmax': lower bound 0.8 is above upper 0.2"),
            ("mixup", "cutmix_minmax: [0, 0.5]", "'mixup.cutmix_minmax': item 1 must be in (0.0, 1.0], got 0.0"),
            ("ema", "decay: 1.5", "'ema.decay': must be in [0.0, 1.0], got 1.5"),
            ("distill", "teacher: {name: t, checkpoint: t.h5}, alpha: 1.5", "'distill.alpha': must be in [0.0, 1.0], got 1.5"),
            ("distill", "teacher: {name: t, checkpoint: t.h5}, temperature: 0", "'distill.temperature': must be in [0.01, 100.0], got 0.0"),
            ("distill", "teacher: {name: t, checkpoint: t.h5, mean: [0.5, 0.5, .nan]}", "'distill.teacher.mean': item 3 must be a finite number"),
            ("early_stopping", "min_delta: -1", "'early_stopping.min_delta': must be in [0.0, 1000000000.0], got -1.0"),
        ]
        for (section, entry, expected) in cases { assertRefused(text(section, entry), expected) }
    }

    /// The RandAugment string goes through FinchData's parser when the config is read.
    func testRandAugmentSpecIsParsedAtLoad() throws {
        assertRefused(text("data", "auto_augment: rand-q9"), "'data.auto_augment': auto_augment 'rand-q9': unknown section 'q'")
        assertRefused(text("data", "auto_augment: autoaug-v0"), "'data.auto_augment'")
        XCTAssertEqual(try TrainConfig.parse(text("data", "auto_augment: rand-m9-mstd0.5-inc1"), source: "c").data.autoAugment,
                       "rand-m9-mstd0.5-inc1")
    }

    func testTeacherAndStudentClassCountsAgree() {
        assertRefused(text("model", "num_classes: 5") + "distill: {teacher: {name: t, checkpoint: t.h5, num_classes: 1000}}\n",
                      "'distill.teacher.num_classes': the teacher has 1000 classes but the student (model.num_classes) has 5")
    }

    func testSetPathsAreCheckedLikeTheFile() {
        let base = text("", "")
        assertRefused(base, "'optimzer': unknown key (did you mean 'optimizer'?)", overrides: ["optimzer.lr=1e-4"])
        assertRefused(base, "'optimizer.lrr': unknown key (did you mean 'lr'?)", overrides: ["optimizer.lrr=1e-4"])
        assertRefused(base, "--set: 'optimizer..lr': empty key in the path", overrides: ["optimizer..lr=1"])
        assertRefused(base, "--set: '.lr': empty key in the path", overrides: [".lr=1"])
        assertRefused(base, "--set: 'optimizer.': empty key in the path", overrides: ["optimizer.=1"])
        assertRefused(base, "--set: 'optimizer. lr': ' lr' contains spaces", overrides: ["optimizer. lr=1"])
        assertRefused(base, "--set: 'optimizer.lr': has no value", overrides: ["optimizer.lr="])
        assertRefused(base, "--set: '=1': expected key.path=value", overrides: ["=1"])
        assertRefused(base, "'data.image_size': must be ≥ 8, got 0", overrides: ["data.image_size=0"])
        assertRefused(base, "'optimizer.lr': must be a finite number, got nan", overrides: ["optimizer.lr=.nan"])
        XCTAssertNil(try TrainConfig.parse(base, source: "c", overrides: ["data.image_size=null"]).data.imageSize)
    }

    /// Monitor names are checked against what the run records, with aliases and did-you-mean.
    func testMonitorNamesAreCheckedAndAliased() throws {
        func parse(_ extra: String) throws -> TrainConfig { try TrainConfig.parse(text("", extra), source: "c.yaml") }
        let keras = try parse("checkpoint: {monitor: val_accuracy}\nearly_stopping: {monitor: val_loss}")
        XCTAssertEqual(keras.checkpoint.monitor, "val/top1")
        XCTAssertEqual(keras.checkpoint.mode, .max)
        XCTAssertEqual(keras.earlyStopping?.monitor, "val/loss")
        XCTAssertEqual(keras.earlyStopping?.mode, .min, "a loss is minimised unless said otherwise")
        for (alias, canonical) in [("top1", "val/top1"), ("accuracy", "val/top1"), ("loss", "val/loss"), ("top5", "val/top5"),
                                   ("val/balanced_accuracy", "val/balanced_accuracy"), ("lr/decay", "lr/decay")] {
            XCTAssertEqual(try parse("checkpoint: {monitor: \(alias)}").checkpoint.monitor, canonical, alias)
        }
        XCTAssertEqual(try parse("checkpoint: {monitor: val/loss}").checkpoint.mode, .min)
        XCTAssertEqual(try parse("ema: {decay: 0.99}\ncheckpoint: {monitor: val_ema/top1}").checkpoint.monitor, "val_ema/top1")

        let cases: [(String, String)] = [
            ("checkpoint: {monitor: val_accuray}", "'checkpoint.monitor': 'val_accuray' is not a metric this run records (did you mean 'val/top1'?)"),
            ("checkpoint: {monitor: val/top_1}", "(did you mean 'val/top1'?)"),
            ("checkpoint: {monitor: f1}", "'checkpoint.monitor': 'f1' is not a metric this run records; it records train/loss"),
            ("early_stopping: {monitor: val/acc}", "'early_stopping.monitor': 'val/acc' is not a metric this run records"),
            ("checkpoint: {monitor: val_ema/top1}", "val_ema/* needs an ema section"),
            ("mixup: {mixup_alpha: 0.2}\ncheckpoint: {monitor: train/top1}", "with MixUp/CutMix there is no training accuracy"),
            ("checkpoint: {monitor: val/loss, mode: max}", "'checkpoint.mode': 'max' would keep the worst epoch of val/loss; use min"),
            ("early_stopping: {monitor: top1, mode: min}", "'early_stopping.mode': 'min' would keep the worst epoch of val/top1; use max"),
        ]
        for (extra, expected) in cases { assertRefused(text("", extra), expected) }
    }

}

extension ConfigBoundaryTests {
    /// A key that only acts with one setting of another key is refused with any other setting.
    func testKeysThatWouldDoNothingAreRefused() {
        let cases: [(String, String)] = [
            ("optimizer: {name: sgd, betas: [0.9, 0.99]}", "'optimizer.betas': only adamw uses betas (optimizer.name is sgd)"),
            ("optimizer: {name: momentum, eps: 1.0e-6}", "'optimizer.eps': only adamw uses eps"),
            ("finetune: {mode: full, unfreeze: [blocks.5]}", "'finetune.unfreeze': applies to mode: partial only (finetune.mode is full)"),
            ("finetune: {mode: partial, unfreeze: [blocks.5], unfreeze_at_epoch: 2}", "'finetune.unfreeze_at_epoch': trains the head, then everything"),
            ("finetune: {unfreeze_at_epoch: 300}", "'finetune.unfreeze_at_epoch': 300 is not before the run's end (300 epochs)"),
            ("optimizer: {name: adamw, momentum: 0.95}", "'optimizer.momentum': has no effect here: adamw has no momentum"),
            ("optimizer: {clip_mode: value}", "'optimizer.clip_mode': has no effect here: no optimizer.clip_grad is set"),
            ("optimizer: {lr: 0.01, lr_base: 0.5}", "'optimizer.lr_base': has no effect here: optimizer.lr is set"),
            ("schedule: {name: cosine, decay_epochs: 30}", "'schedule.decay_epochs': has no effect here: only the step schedule uses it (schedule.name is cosine)"),
            ("schedule: {name: step, decay_milestones: [10, 20]}", "'schedule.decay_milestones': has no effect here"),
            ("schedule: {name: cosine, decay_rate: 0.5}", "'schedule.decay_rate': has no effect here"),
            ("schedule: {name: step, patience_epochs: 3}", "'schedule.patience_epochs': has no effect here"),
            ("schedule: {warmup_epochs: 0, warmup_lr: 0.001}", "'schedule.warmup_lr': has no effect here: schedule.warmup_epochs is 0"),
            ("distill: {teacher: {name: t, checkpoint: t.h5}, kind: hard, temperature: 2}", "'distill.temperature': has no effect here"),
        ]
        for (extra, expected) in cases { assertRefused(text("", extra), expected) }
        assertRefused("data: {root: d, num_samples: 100}\nmodel: {name: m}\n", "'data.num_samples': applies to sampler: weighted only")
        assertRefused("data: {root: d, val_list: v.csv}\nmodel: {name: m}\n", "'data.val_list': is used with data.train_list")
        assertRefused("data: {root: d, re_count: 3}\nmodel: {name: m}\n", "'data.re_count': has no effect here: random erasing is off")
        assertRefused("data: {root: d, re_mode: const}\nmodel: {name: m}\n", "'data.re_mode': has no effect here")
        assertRefused("data: {root: d, auto_augment: rand-m9, color_jitter: 0.3}\nmodel: {name: m}\n", "'data.color_jitter': has no effect here")
        // The written-back config holds every default and reads back: only changed values count.
        let active = try? TrainConfig.parse("data: {root: d, re_prob: 0.25, re_count: 2}\nmodel: {name: m}\nschedule: {name: step, decay_epochs: 30, decay_rate: 0.5}\n", source: "c")
        XCTAssertEqual(active?.schedule.decayEpochs, 30)
        XCTAssertNoThrow(try TrainConfig.parse(try XCTUnwrap(active).resolvedYAML, source: "resolved"))
        XCTAssertNoThrow(try TrainConfig.parse("data: {root: d, sampler: weighted, num_samples: 100}\nmodel: {name: m}\noptimizer: {name: adamw, betas: [0.9, 0.99]}\n",
                                               source: "c"))
    }
}
