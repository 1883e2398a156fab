import FinchData

/// The config's choices that have no enum of their own elsewhere; the others reuse the
/// library's (`FineTuning.Mode`, `Mixup.Mode`, `RandomErasing.Mode`, `Distillation.Kind`).
/// Raw values are the YAML spellings.
extension TrainConfig {
    /// `data.sampler`: the training order (FinchData's `Sampler` without its parameters).
    public enum SamplerKind: String, CaseIterable, Sendable { case random, sequential, weighted }

    /// `data.interpolation`: the training resize filter; `random` picks one per image, as timm.
    public enum Interpolation: String, CaseIterable, Sendable {
        case bilinear, bicubic, random
        /// The filter RandAugment's geometric ops use; nil for `random` (RandAugment's own pick).
        public var filter: Resample.Filter? {
            switch self {
            case .bilinear: return .bilinear
            case .bicubic: return .bicubic
            case .random: return nil
            }
        }
    }

    /// `data.on_bad_image`: stop the run on an undecodable image, or skip it.
    public enum BadImagePolicy: String, CaseIterable, Sendable { case error, skip }

    /// `model.head_init`: the new classifier's start.
    public enum HeadInit: String, CaseIterable, Sendable { case timm, zeros }

    /// `optimizer.name`: timm's `sgd` is Nesterov momentum, `momentum` plain heavy-ball.
    public enum OptimizerName: String, CaseIterable, Sendable { case sgd, momentum, adamw }

    /// `optimizer.lr_base_scale`: "" (auto) is sqrt for the Adam family and linear otherwise.
    public enum LRBaseScale: String, CaseIterable, Sendable { case auto = "", linear, sqrt }

    /// `optimizer.clip_mode`: clip the global gradient norm, or each gradient value.
    public enum ClipMode: String, CaseIterable, Sendable { case norm, value }

    /// `schedule.name`: timm's `--sched`.
    public enum ScheduleName: String, CaseIterable, Sendable { case cosine, step, multistep, plateau, constant, none }

    /// `checkpoint.mode` and `early_stopping.mode`; `auto` is resolved at read time (min for
    /// losses, max otherwise), so a loaded config holds only `max` or `min`.
    public enum MonitorMode: String, CaseIterable, Sendable { case auto, max, min }
}
