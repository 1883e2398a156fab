import XCTest
import Yams
@testable import FinchTrain

/// The declarations in TrainConfig.swift are the config's only statement of names, defaults,
/// rules and docs: these tests hold them to that.
final class ConfigDeclarationTests: XCTestCase {
    let base = "data: {root: d}\nmodel: {name: m}\n"
    /// Every section present, many keys off their defaults.
    let full = """
    data: {root: d, sampler: weighted, num_samples: 9, class_limits: {a: 3}, re_prob: 0.25, re_mode: rand}
    model: {name: m, head_init: zeros, num_classes: 3}
    optimizer: {name: adamw, betas: [0.8, 0.9], lr_base_scale: sqrt, layer_lr: {conv_stem: 1.0e-5}}
    schedule: {name: multistep, decay_milestones: [3, 5]}
    mixup: {mixup_alpha: 0.2, mode: pair}
    distill: {teacher: {name: t, checkpoint: c.h5, mean: [0.5, 0.5, 0.5]}, kind: hard}
    ema: {decay: 0.99}
    checkpoint: {monitor: loss}
    early_stopping: {monitor: top1, mode: max}
    """

    /// (a) Each default, written back as the resolved config writes it and read again as if a
    /// user had given it, passes the key's own range, list or choice rule and counts as unchanged.
    func testEveryDeclaredDefaultPassesItsOwnRule() throws {
        let keys = TrainConfig.declaredKeys
        XCTAssertEqual(keys.count, 109)   // + logging.tensorboard, distributed.{bucket_mb,sync_bn,dist_bn,overlap,batch_size_per_rank}, distill.teacher.view
        XCTAssertEqual(Set(keys.map(\.path)).count, keys.count, "key paths are unique")
        var checked = 0
        for (path, key) in keys {
            XCTAssertFalse(key.doc.isEmpty, "\(path) has no doc")
            let empty = try ConfigReader(file: "t", path: "", node: nil)
            _ = try key.read(from: empty)
            let written = try XCTUnwrap(empty.resolved.first?.1, path)
            // Through YAML text, as the resolved config is written and read back.
            let text = try Yams.serialize(node: Node([(Node(key.name), written)]))
            let mapping = try XCTUnwrap(try Yams.compose(yaml: text), path)
            if mapping[key.name]?.null != nil { continue }   // an optional key, unset by default
            let given = try ConfigReader(file: "t", path: "", node: mapping)
            XCTAssertNoThrow(try key.read(from: given), path)
            XCTAssertTrue(given.changed.isEmpty, "\(path): its default written back reads as a change")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 70)
        // The same check refuses a default outside its range.
        let bad = ConfigKey<Int>("k", 0, min: 1, max: 3, doc: "d")
        let empty = try ConfigReader(file: "t", path: "", node: nil)
        _ = try bad.read(from: empty)
        let text = try Yams.serialize(node: Node([(Node("k"), try XCTUnwrap(empty.resolved.first?.1))]))
        let given = try ConfigReader(file: "t", path: "", node: try Yams.compose(yaml: text))
        XCTAssertThrowsError(try bad.read(from: given)) { XCTAssertEqual(($0 as? ConfigError)?.message, "must be ≥ 1, got 0") }
    }

    /// The declarations are exactly what the resolved config writes: same paths, same order.
    func testResolvedConfigListsEveryDeclaredKeyInOrder() throws {
        let c = try TrainConfig.parse(full, source: "t.yaml")
        let node = try XCTUnwrap(try Yams.compose(yaml: c.resolvedYAML))
        XCTAssertEqual(leaves(node, prefix: ""), TrainConfig.declaredKeys.map(\.path))
    }

    /// (b) write → read gives an equal config, value by value.
    func testResolvedConfigRoundTrips() throws {
        for (text, overrides) in [(base, [String]()), (full, ["optimizer.clip_grad=1.5", "data.interpolation=random", "finetune.freeze_bn=true"])] {
            let c = try TrainConfig.parse(text, source: "t.yaml", overrides: overrides, defaultExperiment: "stem")
            let again = try TrainConfig.parse(c.resolvedYAML, source: "resolved.yaml", defaultExperiment: "stem")
            let before = values(c), after = values(again)
            XCTAssertEqual(after, before)
            XCTAssertEqual(again.resolvedYAML, c.resolvedYAML)
            XCTAssertEqual(again.changedKeys, c.changedKeys)
            if text == full {
                XCTAssertEqual(before.count, TrainConfig.declaredKeys.count, "every key compared")
                XCTAssertEqual(again.distill?.kind, .hard)
                XCTAssertEqual(again.data.sampler, .weighted)
                XCTAssertEqual(again.data.interpolation, .random)
                XCTAssertEqual(again.optimizer.clipGrad, 1.5)
                XCTAssertEqual(again.checkpoint.monitor, "val/loss")
                XCTAssertEqual(again.checkpoint.mode, .min)
            }
        }
    }

    /// (c) Each choice key refuses a near miss, naming the key, the choices and the likely one.
    func testBadChoiceIsRefusedForEveryChoiceKey() throws {
        let choiceKeys = TrainConfig.declaredKeys.filter { !$0.key.choices.isEmpty }
        XCTAssertEqual(choiceKeys.map(\.path), ["data.sampler", "data.interpolation", "data.re_mode", "data.on_bad_image", "model.head_init",
                                               "finetune.mode", "optimizer.name", "optimizer.lr_base_scale", "optimizer.clip_mode",
                                               "schedule.name", "mixup.mode", "distill.teacher.view", "distill.kind", "checkpoint.mode", "early_stopping.mode", "distributed.dist_bn"])
        for (path, key) in choiceKeys {
            let intended = try XCTUnwrap(key.choices.last)
            let typo = intended + "x"
            XCTAssertThrowsError(try TrainConfig.parse(base, source: "t.yaml", overrides: ["\(path)=\(typo)"]), path) { e in
                XCTAssertEqual(e as? ConfigError, ConfigError(file: "t.yaml", key: path,
                    message: "'\(typo)' is not one of \(key.choices.joined(separator: ", ")) (did you mean '\(intended)'?)"))
            }
            // A value far from every choice gets no suggestion.
            XCTAssertThrowsError(try TrainConfig.parse(base, source: "t.yaml", overrides: ["\(path)=zzzzzzzzzzzz"]), path) { e in
                XCTAssertEqual(e as? ConfigError, ConfigError(file: "t.yaml", key: path,
                    message: "'zzzzzzzzzzzz' is not one of \(key.choices.joined(separator: ", "))"))
            }
        }
    }

    /// (d) Each cross-field rule of `validate` fires, naming its key.
    func testEveryCrossFieldRuleFires() throws {
        let teacher = "distill.teacher={name: t, checkpoint: c.h5}"
        let cases: [(text: String, set: [String], key: String, says: String)] = [
            ("model: {name: m}", [], "data.root", "is required"),
            ("data: {root: d}", [], "model.name", "is required"),
            (base, ["finetune.mode=partial"], "finetune.unfreeze", "partial fine-tuning needs the prefixes"),
            (base, ["optimizer.betas=[0.9, 0.99]"], "optimizer.betas", "only adamw uses betas (optimizer.name is sgd)"),
            (base, ["optimizer.name=momentum", "optimizer.eps=1.0e-6"], "optimizer.eps", "only adamw uses eps (optimizer.name is momentum)"),
            (base, ["data.num_samples=5"], "data.num_samples", "applies to sampler: weighted only (data.sampler is random)"),
            (base, ["data.val_list=v.csv"], "data.val_list", "is used with data.train_list"),
            (base, ["finetune.unfreeze=[blocks.5]"], "finetune.unfreeze", "applies to mode: partial only (finetune.mode is full)"),
            (base, ["finetune.mode=partial", "finetune.unfreeze=[b]", "finetune.unfreeze_at_epoch=1"], "finetune.unfreeze_at_epoch", "replaces mode: partial"),
            (base, ["finetune.unfreeze_at_epoch=300"], "finetune.unfreeze_at_epoch", "300 is not before the run's end (300 epochs)"),
            (base, ["optimizer.name=adamw", "optimizer.momentum=0.8"], "optimizer.momentum", "has no effect here: adamw has no momentum"),
            (base, ["optimizer.clip_mode=value"], "optimizer.clip_mode", "no optimizer.clip_grad is set"),
            (base, ["optimizer.lr=0.01", "optimizer.lr_base=0.2"], "optimizer.lr_base", "optimizer.lr is set"),
            (base, ["optimizer.lr=0.01", "optimizer.lr_base_size=128"], "optimizer.lr_base_size", "optimizer.lr is set"),
            (base, ["optimizer.lr=0.01", "optimizer.lr_base_scale=sqrt"], "optimizer.lr_base_scale", "optimizer.lr is set"),
            (base, ["schedule.decay_epochs=30"], "schedule.decay_epochs", "only the step schedule uses it (schedule.name is cosine)"),
            (base, ["schedule.decay_milestones=[1, 2]"], "schedule.decay_milestones", "only the multistep schedule"),
            (base, ["schedule.name=none", "schedule.decay_rate=0.5"], "schedule.decay_rate", "(schedule.name is none)"),
            (base, ["schedule.patience_epochs=3"], "schedule.patience_epochs", "only the plateau schedule"),
            (base, ["schedule.warmup_epochs=0", "schedule.warmup_lr=0.001"], "schedule.warmup_lr", "schedule.warmup_epochs is 0"),
            (base, ["data.re_mode=rand"], "data.re_mode", "random erasing is off"),
            (base, ["data.re_count=2"], "data.re_count", "random erasing is off"),
            (base, ["data.auto_augment=rand-m9", "data.color_jitter=0.3"], "data.color_jitter", "replaces colour jitter"),
            (base, [teacher, "distill.kind=hard", "distill.temperature=2"], "distill.temperature", "hard distillation uses the teacher's argmax"),
            (base, ["data.auto_augment=rand-q9"], "data.auto_augment", "unknown section 'q'"),
            (base, ["schedule.name=multistep", "schedule.decay_milestones=[5, 3]"], "schedule.decay_milestones", "must be increasing epochs"),
            (base, [teacher, "model.num_classes=5", "distill.teacher.num_classes=10"], "distill.teacher.num_classes", "the teacher has 10 classes"),
            (base, ["distill.teacher.checkpoint=c.h5"], "distill.teacher.name", "is required"),
            (base, ["distill.teacher.name=t"], "distill.teacher.checkpoint", "is required"),
            (base, ["schedule.epochs=5", "schedule.warmup_epochs=5"], "schedule.warmup_epochs", "5 warmup epochs leave no training in 5 epochs"),
            (base, ["experiment=a/b"], "experiment", "contains '/'"),
        ]
        for (text, set, key, says) in cases {
            XCTAssertThrowsError(try TrainConfig.parse(text, source: "t.yaml", overrides: set), "\(set)") { e in
                guard let e = e as? ConfigError else { return XCTFail("\(set): \(e)") }
                XCTAssertEqual(e.key, key, "\(set): \(e)")
                XCTAssertTrue(e.message.contains(says), "\(set): \(e)")
            }
        }
        // Each case is refused by its rule alone: without the rule's trigger the base config loads.
        XCTAssertNoThrow(try TrainConfig.parse(base, source: "t.yaml", overrides: [teacher, "distill.kind=hard"]))
    }

    /// A loaded config is a plain value; `validate` refuses an edit that breaks a rule, and
    /// `TrainingSetup` runs it before anything else.
    func testValidateChecksAnEditedConfig() throws {
        var c = try TrainConfig.parse(base, source: "t.yaml")
        XCTAssertNoThrow(try c.validate())
        c.finetune.mode = .partial
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual(($0 as? ConfigError)?.key, "finetune.unfreeze") }
        XCTAssertThrowsError(try TrainingSetup(config: c, baseDirectory: URL(fileURLWithPath: "/nonexistent"))) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "finetune.unfreeze", "refused before the missing dataset is looked for")
        }
    }

    // MARK: Helpers

    /// Dotted paths of a YAML tree's leaves (an empty mapping is a leaf: a number map's value).
    func leaves(_ node: Node, prefix: String) -> [String] {
        guard case .mapping(let m) = node, !m.isEmpty, prefix.split(separator: ".").last.map({ !["class_limits", "layer_lr", "layer_lr_multiplier"].contains(String($0)) }) ?? true else {
            return [prefix]
        }
        return m.flatMap { k, v in leaves(v, prefix: prefix.isEmpty ? k.string ?? "?" : "\(prefix).\(k.string ?? "?")") }
    }

    /// Every declared key's value, printed exactly (`Double`'s description round-trips).
    func values(_ section: Any, prefix: String = "") -> [String: String] {
        var out: [String: String] = [:]
        for child in Mirror(reflecting: section).children {
            guard let f = child.value as? any ConfigField else { continue }
            let path = prefix.isEmpty ? f.name : "\(prefix).\(f.name)"
            if f.fields.isEmpty {
                out[path] = String(describing: f.anyValue)
            } else if let inner = unwrapped(f.anyValue) {
                out.merge(values(inner, prefix: path)) { a, _ in a }
            } else {
                out[path] = "nil"
            }
        }
        return out
    }

    func unwrapped(_ v: Any) -> Any? {
        let m = Mirror(reflecting: v)
        guard m.displayStyle == .optional else { return v }
        return m.children.first?.value
    }
}
