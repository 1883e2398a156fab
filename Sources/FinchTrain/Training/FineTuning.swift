import FinchNN

/// Applies a fine-tuning mode: which parameters train, and which BatchNorm layers keep using
/// their running statistics.
public enum FineTuning {
    public enum Mode: String, Sendable { case full, head, partial }

    /// - head: only the classifier trains; the frozen backbone's BatchNorm layers stay in eval mode.
    /// - partial: the classifier and the listed prefixes train; frozen BatchNorm layers stay in eval mode.
    /// - full: everything trains.
    /// `freezeBatchNorm` additionally freezes every BatchNorm's statistics and affine parameters
    /// (timm's FrozenBatchNorm2d).
    public static func apply(_ mode: Mode, to model: ImageClassifier, unfreeze: [String] = [], freezeBatchNorm: Bool = false) {
        switch mode {
        case .full:
            model.unfreeze()
        case .head:
            model.freeze()
            model.unfreeze(prefixes: model.classifierPrefixes)
        case .partial:
            model.freeze()
            model.unfreeze(prefixes: model.classifierPrefixes + unfreeze)
        }
        for (path, m) in model.namedModules() {
            guard let bn = m as? BatchNorm2d else { continue }
            if freezeBatchNorm {
                bn.weight.requiresGrad = false
                bn.bias.requiresGrad = false
                bn.usesRunningStatsAlways = true
                _ = path
            } else {
                // A BatchNorm whose parameters are frozen belongs to the frozen backbone.
                bn.usesRunningStatsAlways = !bn.weight.requiresGrad
            }
        }
    }
}
