import FinchOptim

extension Trainer {
    /// The config's `optimizer.lr` (or the rate derived from `lr_base`) as the schedule has scaled
    /// it now: what a user set, not a group's rate after layer decay or a head multiplier.
    public var baseLR: Double {
        let base = config.effectiveLR
        // Groups at the base rate start from it; their schedule value is the scaled base rate
        // (a prefix with an absolute rate starts elsewhere; multipliers are outside the value).
        guard let i = optimizer.groups.firstIndex(where: { $0.initialLR == Float(base) }) else { return base }
        guard let scheduler else { return base }
        let values = scheduler.values(at: max(scheduler.lastT, 0))
        return i < values.count ? values[i] : base
    }

    /// The line printed when an epoch ends. `lr` is the base rate of the epoch (`baseLR`);
    /// top-5 is shown only when there are more than 5 classes (with 5 or fewer it is always 1).
    static func summaryLine(_ r: EpochRecord, epochs: Int, baseLR: Double?, classes: Int) -> String {
        let v = r.values
        var parts = ["epoch \(r.epoch + 1)/\(epochs)", String(format: "train loss %.4f", v["train/loss"] ?? .nan)]
        if let a = v["train/top1"] { parts.append(String(format: "train top1 %.3f", a)) }
        if let l = v["val/loss"] { parts.append(String(format: "val loss %.4f", l)) }
        if let a = v["val/top1"] { parts.append(String(format: "val top1 %.3f", a)) }
        if classes > 5, let a = v["val/top5"] { parts.append(String(format: "top5 %.3f", a)) }
        if let a = v["val_ema/top1"] { parts.append(String(format: "ema top1 %.3f", a)) }
        parts.append(String(format: "%.0f img/s", v["train/img_per_s"] ?? 0))
        if let lr = baseLR { parts.append(String(format: "lr %.2e", lr)) }
        if let a = v["dist/allreduce_ms_per_step"] {
            parts.append(String(format: "allreduce %.1f ms/step (%.1f ms exposed)", a, v["dist/allreduce_exposed_ms_per_step"] ?? a))
        }
        parts.append(String(format: "%.1fs", v["epoch_seconds"] ?? 0))
        return parts.joined(separator: "  ")
    }

    /// The parameter groups as `ParameterGrouping.describe` tabulates them, under a heading with
    /// the optimizer and the base rate, for the start of a run.
    public var parameterGroupTable: String {
        "parameter groups (\(config.optimizer.name.rawValue), base lr \(String(format: "%.2e", config.effectiveLR))):\n"
            + ParameterGrouping.describe(optimizer.groups)
    }
}
