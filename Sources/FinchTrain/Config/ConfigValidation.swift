import FinchData

/// The rules that join keys: each key's own range and choices were checked as it was read.
extension TrainConfig {
    /// Run by `parse`, and again by `TrainingSetup` since a loaded config may have been edited.
    public func validate() throws {
        try validateRequired()
        try validateCombinations()
        try validateInertKeys()
        try validateValues()
    }

    private func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: source, key: key, message: message) }

    private func validateRequired() throws {
        if data.root.isEmpty && data.trainList == nil { throw fail("data.root", "is required (the dataset folder, e.g. Datasets/flowers, or data.train_list)") }
        if model.name.isEmpty { throw fail("model.name", "is required (a zoo model, e.g. tf_efficientnet_lite0)") }
        if finetune.mode == .partial && finetune.unfreeze.isEmpty {
            throw fail("finetune.unfreeze", "partial fine-tuning needs the prefixes to train, e.g. [blocks.5, conv_head]")
        }
    }

    /// Keys that only one setting of another key uses: given with any other, they would do nothing.
    private func validateCombinations() throws {
        if optimizer.name != .adamw {
            if optimizer.betas != nil { throw fail("optimizer.betas", "only adamw uses betas (optimizer.name is \(optimizer.name.rawValue))") }
            if optimizer.eps != nil { throw fail("optimizer.eps", "only adamw uses eps (optimizer.name is \(optimizer.name.rawValue))") }
        }
        if data.numSamples != nil && data.sampler != .weighted {
            throw fail("data.num_samples", "applies to sampler: weighted only (data.sampler is \(data.sampler.rawValue))")
        }
        if data.valList != nil && data.trainList == nil {
            throw fail("data.val_list", "is used with data.train_list; for folders set data.val_split")
        }
        if !finetune.unfreeze.isEmpty && finetune.mode != .partial {
            throw fail("finetune.unfreeze", "applies to mode: partial only (finetune.mode is \(finetune.mode.rawValue))")
        }
        if let u = finetune.unfreezeAtEpoch {
            if finetune.mode == .partial {
                throw fail("finetune.unfreeze_at_epoch", "trains the head, then everything: it replaces mode: partial; use one of the two")
            }
            let total = schedule.epochs + (schedule.warmupPrefix ? schedule.warmupEpochs : 0)
            if u >= total { throw fail("finetune.unfreeze_at_epoch", "\(u) is not before the run's end (\(total) epochs): the backbone would never train") }
        }
    }

    /// A non-default value that the rest of the config leaves without effect (the written-back
    /// config holds every default, so only values a user changed count).
    private func validateInertKeys() throws {
        func inert(_ key: String, unless active: Bool, _ why: String) throws {
            if !active && changedKeys.contains(key) { throw fail(key, "has no effect here: \(why)") }
        }
        let schedules = "schedule.name is \(schedule.name.rawValue)"
        try inert("optimizer.momentum", unless: optimizer.name != .adamw, "adamw has no momentum (optimizer.betas plays that part)")
        try inert("optimizer.clip_mode", unless: optimizer.clipGrad != nil, "no optimizer.clip_grad is set")
        for k in ["lr_base", "lr_base_size", "lr_base_scale"] {
            try inert("optimizer.\(k)", unless: optimizer.lr == nil, "optimizer.lr is set, and \(k) only derives a rate when it is not")
        }
        try inert("schedule.decay_epochs", unless: schedule.name == .step, "only the step schedule uses it (\(schedules))")
        try inert("schedule.decay_milestones", unless: schedule.name == .multistep, "only the multistep schedule uses it (\(schedules))")
        try inert("schedule.decay_rate", unless: [.step, .multistep, .plateau].contains(schedule.name),
                  "only the step, multistep and plateau schedules use it (\(schedules))")
        try inert("schedule.patience_epochs", unless: schedule.name == .plateau, "only the plateau schedule uses it (\(schedules))")
        try inert("schedule.warmup_lr", unless: schedule.warmupEpochs > 0, "schedule.warmup_epochs is 0")
        try inert("data.re_mode", unless: data.reProb > 0, "random erasing is off (data.re_prob is 0)")
        try inert("data.re_count", unless: data.reProb > 0, "random erasing is off (data.re_prob is 0)")
        try inert("data.color_jitter", unless: data.autoAugment == nil, "data.auto_augment replaces colour jitter, as in timm")
        if let d = distill {
            try inert("distill.temperature", unless: d.kind == .soft, "hard distillation uses the teacher's argmax, not a temperature")
            try inert("distill.teacher.view", unless: d.teacher.imageSize != nil && d.teacher.imageSize != data.imageSize,
                      "the teacher sees the student's size (distill.teacher.image_size is unset or equal to data.image_size)")
        }
    }

    private func validateValues() throws {
        if let aa = data.autoAugment {
            // FinchData's own parser, so a bad magnitude or op count fails now, not when the loader starts.
            do { _ = try RandAugment(config: aa) } catch { throw fail("data.auto_augment", "\(error)") }
        }
        if schedule.name == .multistep, zip(schedule.decayMilestones, schedule.decayMilestones.dropFirst()).contains(where: { $0 >= $1 }) {
            throw fail("schedule.decay_milestones", "\(schedule.decayMilestones) must be increasing epochs")
        }
        if let t = distill?.teacher, let k = t.numClasses, let s = model.numClasses, k != s {
            throw fail("distill.teacher.num_classes", "the teacher has \(k) classes but the student (model.num_classes) has \(s); distillation compares the two outputs class by class")
        }
        if let d = distill {
            if d.teacher.name.isEmpty { throw fail("distill.teacher.name", "is required") }
            if d.teacher.checkpoint.isEmpty { throw fail("distill.teacher.checkpoint", "is required (the teacher's weights)") }
            if d.teacher.view == .own, d.teacher.imageSize != nil, d.teacher.imageSize != data.imageSize, data.reProb > 0 {
                throw fail("distill.teacher.view", "own renders the teacher's view with the student's augmentation draws, but random erasing (data.re_prob \(data.reProb)) draws its boxes from the image size; set distill.teacher.view: resized or data.re_prob: 0")
            }
        }
        if schedule.warmupEpochs >= schedule.epochs && !schedule.warmupPrefix && schedule.name != .none {
            throw fail("schedule.warmup_epochs", "\(schedule.warmupEpochs) warmup epochs leave no training in \(schedule.epochs) epochs")
        }
        try ExperimentName.validate(experiment, source: source)
    }
}
