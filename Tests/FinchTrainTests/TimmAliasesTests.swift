import XCTest
import Yams
@testable import FinchTrain

/// `--set` with timm's option names and with a key's bare name; a typo in a short name points at
/// the full path in whichever section holds the nearest key.
final class TimmAliasesTests: XCTestCase {
    let minimal = "data: {root: d}\nmodel: {name: m}\n"

    func parse(_ overrides: [String]) throws -> TrainConfig { try TrainConfig.parse(minimal, source: "t.yaml", overrides: overrides) }

    func assertRefused(_ overrides: [String], _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try parse(overrides), line: line) { e in
            XCTAssertTrue("\(e)".contains(expected), "\(overrides) → \(e)\nexpected: \(expected)", line: line)
        }
    }

    /// Every alias names a declared key or section, so a renamed key breaks this table, not a user's run.
    func testEveryAliasTargetsADeclaredKey() {
        let names = KeyNames.shared
        for (timm, alias) in TimmNames.table {
            XCTAssertTrue(names.paths.contains(alias.finch) || names.sections.contains(alias.finch), "\(timm) → \(alias.finch)")
            XCTAssertFalse(TimmNames.withoutEquivalent.contains(timm), "\(timm) is both mapped and listed without equivalent")
        }
        for name in ["opt", "sched", "smoothing", "mixup", "cutmix", "aa", "reprob", "drop_path", "checkpoint_hist", "eval_metric",
                     "lr", "weight_decay", "epochs", "batch_size", "warmup_epochs"] {
            XCTAssertNotNil(TimmNames.finchKey(forTimm: name), name)
        }
    }

    func testTimmNamesSetTheirFinchKeysWithValuesTranslated() throws {
        let c = try parse(["opt=adamw", "sched=step", "smoothing=0.2", "mixup=0.8", "cutmix=1.0", "aa=rand-m9-mstd0.5-inc1",
                           "reprob=0.25", "drop-path=0.1", "checkpoint_hist=3", "eval_metric=top5", "lr=1e-3",
                           "weight_decay=0.05", "epochs=7", "batch_size=16", "warmup_epochs=2", "model_ema=true",
                           "model_ema_decay=0.99", "drop=0.3"])
        XCTAssertEqual(c.optimizer.name, .adamw)
        XCTAssertEqual(c.schedule.name, .step)
        XCTAssertEqual(c.mixup.labelSmoothing, 0.2)
        XCTAssertEqual(c.mixup.mixupAlpha, 0.8)
        XCTAssertEqual(c.mixup.cutmixAlpha, 1.0)
        XCTAssertEqual(c.data.autoAugment, "rand-m9-mstd0.5-inc1")
        XCTAssertEqual(c.data.reProb, 0.25)
        XCTAssertEqual(c.model.dropPathRate, 0.1)
        XCTAssertEqual(c.model.dropRate, 0.3)
        XCTAssertEqual(c.checkpoint.keep, 3)
        XCTAssertEqual(c.checkpoint.monitor, "val/top5")
        XCTAssertEqual(c.optimizer.lr, 1e-3)
        XCTAssertEqual(c.optimizer.weightDecay, 0.05)
        XCTAssertEqual(c.schedule.epochs, 7)
        XCTAssertEqual(c.data.batchSize, 16)
        XCTAssertEqual(c.schedule.warmupEpochs, 2)
        XCTAssertEqual(c.ema?.decay, 0.99)
        // timm's sgd and nesterov are Finch's sgd (Nesterov); `model: name` is timm's scalar form.
        XCTAssertEqual(try parse(["opt=nesterov"]).optimizer.name, .sgd)
        XCTAssertEqual(try parse(["opt=momentum"]).optimizer.name, .momentum)
        XCTAssertEqual(try parse(["model=resnet18"]).model.name, "resnet18")
        XCTAssertNil(try parse(["model_ema=false"]).ema)
        // A key's own name, when one section alone has it.
        XCTAssertEqual(try parse(["hflip=0"]).data.hflip, 0)
        XCTAssertEqual(try parse(["label_smoothing=0.3"]).mixup.labelSmoothing, 0.3)
        // Full paths and sections work as before.
        XCTAssertEqual(try parse(["optimizer.lr=2e-3"]).optimizer.lr, 2e-3)
        XCTAssertEqual(try parse(["mixup={mixup_alpha: 0.4}"]).mixup.mixupAlpha, 0.4)
    }

    func testValuesFinchCannotExpressAreRefusedByName() {
        assertRefused(["opt=lamb"], "--set: 'opt': timm's opt 'lamb' has no Finch equivalent (Finch has sgd")
        assertRefused(["sched=tanh"], "timm's sched 'tanh' has no Finch equivalent (Finch has cosine, step, multistep, plateau)")
        assertRefused(["clip_mode=agc"], "timm's clip_mode 'agc' has no Finch equivalent")
        assertRefused(["input_size=[3, 224, 192]"], "Finch trains square images")
    }

    func testDidYouMeanLooksInEverySection() {
        assertRefused(["lrr=1"], "--set: 'lrr': unknown key (did you mean 'optimizer.lr'?)")
        assertRefused(["batchsize=8"], "(did you mean 'data.batch_size'?)")
        assertRefused(["smothing=0.1"], "(did you mean 'mixup.label_smoothing'?)")
        assertRefused(["warmup_epoch=1"], "(did you mean 'schedule.warmup_epochs'?)")
        // A name several sections share must be written in full.
        assertRefused(["image_size=64"], "is a key in several sections: data.image_size, distill.teacher.image_size")
        // A long pasted word gets no suggestion (and no quadratic search over every key).
        let long = String(repeating: "x", count: 200_000)
        assertRefused(["\(long)=1"], "': unknown key; keys are written section.key")
        // Inside a section the section's own keys are suggested, as before.
        assertRefused(["optimizer.lrr=1"], "'optimizer.lrr': unknown key (did you mean 'lr'?)")
    }
}
