import Foundation
import Yams

/// timm's `train.py` option names (as `args.yaml` spells them, underscores) and the Finch key each
/// one sets, with the value translated where timm's spelling differs (`opt: nesterov` is Finch's
/// `sgd`). One table serves `--set opt=adamw` and `finch config from-timm`.
public enum TimmNames {
    /// What a timm value becomes: a Finch value, nothing (timm's "unset": null, "" or off), or a
    /// value Finch cannot express (the reason says what it can).
    enum Translation {
        case value(Node)
        case unset
        case unsupported(String)
    }

    struct Alias {
        let timm: String
        let finch: String
        let translate: (Node) -> Translation
    }

    /// The Finch key a timm name sets, or nil.
    public static func finchKey(forTimm name: String) -> String? { alias(name)?.finch }

    static func alias(_ name: String) -> Alias? { table[name.replacingOccurrences(of: "-", with: "_")] }

    static let table: [String: Alias] = {
        var t: [String: Alias] = [:]
        func add(_ timm: String, _ finch: String, _ translate: @escaping (Node) -> Translation = plain) {
            t[timm] = Alias(timm: timm, finch: finch, translate: translate)
        }
        // data
        add("data_dir", "data.root", path)
        add("data", "data.root", path)
        add("train_split", "data.train_split")
        add("val_split", "data.val_split")
        add("img_size", "data.image_size")
        add("input_size", "data.image_size", inputSize)
        add("batch_size", "data.batch_size")
        add("workers", "data.workers")
        add("crop_pct", "data.crop_pct")
        add("mean", "data.mean")
        add("std", "data.std")
        add("train_interpolation", "data.interpolation", oneOf(["bilinear", "bicubic", "random"]))
        add("hflip", "data.hflip")
        add("vflip", "data.vflip")
        add("scale", "data.scale")
        add("ratio", "data.ratio")
        add("color_jitter", "data.color_jitter")
        add("aa", "data.auto_augment", path)
        add("reprob", "data.re_prob")
        add("remode", "data.re_mode", oneOf(["pixel", "const", "rand"]))
        add("recount", "data.re_count")
        // model
        add("model", "model.name", path)
        add("num_classes", "model.num_classes")
        add("initial_checkpoint", "model.pretrained", path)
        add("pretrained_path", "model.pretrained", path)
        add("drop", "model.drop_rate")
        add("drop_path", "model.drop_path_rate")
        // optimizer
        add("opt", "optimizer.name", optimizer)
        add("lr", "optimizer.lr")
        add("lr_base", "optimizer.lr_base")
        add("lr_base_size", "optimizer.lr_base_size")
        add("lr_base_scale", "optimizer.lr_base_scale", oneOf(["linear", "sqrt"]))
        add("weight_decay", "optimizer.weight_decay")
        add("momentum", "optimizer.momentum")
        add("opt_betas", "optimizer.betas")
        add("opt_eps", "optimizer.eps")
        add("layer_decay", "optimizer.layer_decay")
        add("layer_decay_min_scale", "optimizer.layer_decay_min_scale")
        add("clip_grad", "optimizer.clip_grad")
        add("clip_mode", "optimizer.clip_mode", oneOf(["norm", "value"]))
        add("grad_accum_steps", "optimizer.accumulation_steps")
        // schedule
        add("sched", "schedule.name", oneOf(["cosine", "step", "multistep", "plateau"]))
        add("epochs", "schedule.epochs")
        add("warmup_epochs", "schedule.warmup_epochs")
        add("warmup_lr", "schedule.warmup_lr")
        add("min_lr", "schedule.min_lr")
        add("decay_epochs", "schedule.decay_epochs", wholeNumber)
        add("decay_milestones", "schedule.decay_milestones")
        add("decay_rate", "schedule.decay_rate")
        add("patience_epochs", "schedule.patience_epochs")
        add("warmup_prefix", "schedule.warmup_prefix")
        add("sched_on_updates", "schedule.on_updates")
        // mixup and label smoothing
        add("mixup", "mixup.mixup_alpha")
        add("cutmix", "mixup.cutmix_alpha")
        add("cutmix_minmax", "mixup.cutmix_minmax")
        add("mixup_prob", "mixup.prob")
        add("mixup_switch_prob", "mixup.switch_prob")
        add("mixup_mode", "mixup.mode", oneOf(["batch", "pair", "elem"]))
        add("smoothing", "mixup.label_smoothing")
        // EMA: timm switches it with a flag, Finch with the section's presence.
        add("model_ema", "ema", emaSwitch)
        add("model_ema_decay", "ema.decay")
        add("model_ema_warmup", "ema.warmup")
        // checkpoints and the run
        add("checkpoint_hist", "checkpoint.keep")
        add("eval_metric", "checkpoint.monitor", evalMetric)
        add("seed", "seed")
        add("log_interval", "log_interval")
        add("output", "output", path)
        add("experiment", "experiment", path)
        return t
    }()

    /// timm's `train.py` options Finch has no key for (timm 1.0), so a converter can tell "timm's,
    /// but not here" from "not timm's at all".
    static let withoutEquivalent: Set<String> = [
        "dataset", "train_num_samples", "val_num_samples", "dataset_download", "class_map", "input_img_mode",
        "input_key", "target_key", "dataset_trust_remote_code", "pretrained", "resume", "no_resume_opt", "gp",
        "in_chans", "interpolation", "validation_batch_size", "channels_last", "fuser", "grad_checkpointing",
        "fast_norm", "model_kwargs", "head_init_scale", "head_init_bias", "torchscript", "torchcompile",
        "torchcompile_mode", "device", "device_modules", "amp", "amp_dtype", "amp_impl", "model_dtype", "no_ddp_bb",
        "synchronize_step", "local_rank", "layer_decay_no_opt_scale", "opt_kwargs", "lr_noise", "lr_noise_pct",
        "lr_noise_std", "lr_cycle_mul", "lr_cycle_decay", "lr_cycle_limit", "lr_k_decay", "epoch_repeats",
        "start_epoch", "cooldown_epochs", "no_aug", "train_crop_mode", "color_jitter_prob", "grayscale_prob",
        "gaussian_blur_prob", "aug_repeats", "aug_splits", "jsd_loss", "bce_loss", "bce_sum", "bce_target_thresh",
        "bce_pos_weight", "resplit", "mixup_off_epoch", "drop_connect", "drop_block", "bn_momentum", "bn_eps",
        "sync_bn", "dist_bn", "split_bn", "model_ema_force_cpu", "worker_seeding", "recovery_interval",
        "save_images", "pin_mem", "no_prefetcher", "tta", "use_multi_epochs_loader", "log_wandb", "wandb_project",
        "wandb_tags", "wandb_resume_id", "config", "distributed", "world_size", "rank", "prefetcher",
    ]

    /// timm's own defaults of options without a Finch key: at these values the option changes
    /// nothing Finch would do, so a converter need not mention it.
    static let inertDefaults: [String: String] = [
        "amp_dtype": "float16", "amp_impl": "native", "device": "cuda", "dist_bn": "reduce", "lr_cycle_decay": "0.5",
        "lr_cycle_limit": "1", "lr_cycle_mul": "1.0", "lr_k_decay": "1.0", "lr_noise_pct": "0.67", "lr_noise_std": "1.0",
        "worker_seeding": "all", "local_rank": "0",
    ]

    /// Whether a value leaves a timm option off: unset, false, zero, or timm's inert default.
    static func isOff(_ name: String, _ n: Node) -> Bool {
        if isUnset(n) || n.bool == false { return true }
        if let d = ConfigReader.number(n), d == 0 { return true }
        if case .mapping(let m) = n, m.count == 0 { return true }
        if let s = n.scalar?.string, inertDefaults[name] == s { return true }
        return false
    }

    /// Whether `name` is one of timm's `train.py` options (with or without a Finch key).
    static func isTimmOption(_ name: String) -> Bool { table[name] != nil || withoutEquivalent.contains(name) }

    // MARK: Value translations

    /// null, "" and an empty list are timm's "not given": Finch keeps its default.
    static func isUnset(_ n: Node) -> Bool {
        if n.null != nil { return true }
        if case .scalar(let s) = n, s.string.isEmpty { return true }
        if case .sequence(let seq) = n, seq.isEmpty { return true }
        return false
    }

    static func plain(_ n: Node) -> Translation { isUnset(n) ? .unset : .value(n) }

    /// Strings kept as given (model names, folders, RandAugment strings); empty is unset.
    static func path(_ n: Node) -> Translation {
        guard case .scalar(let s) = n, !isUnset(n) else { return isUnset(n) ? .unset : .unsupported("expected a string") }
        return .value(Node(s.string))
    }

    /// timm's "" is unset everywhere (for lr_base_scale: Finch's default, the automatic choice).
    static func oneOf(_ allowed: [String]) -> (Node) -> Translation {
        { n in
            if isUnset(n) { return .unset }
            guard case .scalar(let s) = n else { return .unsupported("expected one of \(allowed.joined(separator: ", "))") }
            let v = s.string.lowercased()
            guard allowed.contains(v) else { return .unsupported("Finch has \(allowed.joined(separator: ", "))") }
            return .value(Node(v))
        }
    }

    /// timm's `sgd` and `nesterov` are both Nesterov momentum (Finch's `sgd`); `momentum` is plain.
    static func optimizer(_ n: Node) -> Translation {
        guard case .scalar(let s) = n, !isUnset(n) else { return .unset }
        switch s.string.lowercased() {
        case "sgd", "nesterov": return .value(Node("sgd"))
        case "momentum": return .value(Node("momentum"))
        case "adamw": return .value(Node("adamw"))
        default: return .unsupported("Finch has sgd (Nesterov, timm's sgd/nesterov), momentum and adamw")
        }
    }

    /// `input_size: [3, H, W]` is square images of side H here.
    static func inputSize(_ n: Node) -> Translation {
        if isUnset(n) { return .unset }
        guard case .sequence(let seq) = n, seq.count == 3, let h = seq[1].int, let w = seq[2].int, seq[0].int == 3 else {
            return .unsupported("expected [3, H, W]")
        }
        guard h == w else { return .unsupported("Finch trains square images; \(h)×\(w) is not") }
        return .value(Node(String(h)))
    }

    /// timm's decay_epochs is a float (100.0); Finch's counts whole epochs.
    static func wholeNumber(_ n: Node) -> Translation {
        if isUnset(n) { return .unset }
        guard let d = ConfigReader.number(n), d == d.rounded(), abs(d) < 1e9 else { return .unsupported("Finch counts whole epochs") }
        return .value(Node(String(Int(d))))
    }

    /// `model_ema: true` turns the `ema` section on with its defaults; false leaves it off.
    static func emaSwitch(_ n: Node) -> Translation {
        if isUnset(n) { return .unset }
        guard let b = n.bool else { return .unsupported("expected true or false") }
        return b ? .value(Node([(Node, Node)]())) : .unset
    }

    /// timm's eval metrics are validation metrics by their bare names.
    static func evalMetric(_ n: Node) -> Translation {
        guard case .scalar(let s) = n, !isUnset(n) else { return .unset }
        switch s.string {
        case "top1", "top5", "loss": return .value(Node("val/" + s.string))
        default: return .value(Node(s.string))
        }
    }
}
