import Foundation
import Yams
import FinchData

/// The training recipe, section by section as in the design notes. Each key is declared once,
/// here: YAML name, default, rule and doc (timm's `train.py` option in the doc, whose default
/// Finch keeps unless the doc says why not). Reading, the resolved config and the key listing
/// all come from these declarations (`ConfigKey`, `ConfigDecoder`).
public struct TrainConfig: ConfigSection {
    public struct Data: ConfigSection {
        @ConfigKey("root", "", doc: "the dataset folder (ImageFolder)") public var root: String
        @ConfigKey("train_split", "train", doc: "folder under root") public var trainSplit: String
        @ConfigKey("val_split", "val", doc: "folder under root") public var valSplit: String
        @ConfigKey("val_fraction", 0.15, range: .aboveUpTo(0, 0.9), doc: "stratified split when root has no val/ folder")
        public var valFraction: Double
        @ConfigKey("image_size", min: Limits.minImageSize, max: Limits.maxImageSize, doc: "--img-size; unset: the model's pretrained input size")
        public var imageSize: Int?
        @ConfigKey("batch_size", 128, min: 1, max: Limits.batchSize, doc: "--batch-size") public var batchSize: Int
        @ConfigKey("workers", 2, min: 0, max: Limits.workers, doc: "--workers (timm 4; 2 here: the machines have 2 cores)")
        public var workers: Int
        @ConfigKey("sampler", .random, choices: [.random, .sequential, .weighted], doc: "random | sequential | weighted (class-balanced)")
        public var sampler: SamplerKind
        @ConfigKey("num_samples", min: 1, max: Limits.samples, doc: "weighted: draws per epoch (default: dataset size)")
        public var numSamples: Int?
        @ConfigKey("replacement", true, doc: "weighted: draw with replacement") public var replacement: Bool
        @ConfigKey("drop_last", true, doc: "drop the last incomplete training batch") public var dropLast: Bool
        @ConfigKey("hflip", 0.5, range: 0...1, doc: "--hflip") public var hflip: Double
        @ConfigKey("vflip", 0, range: 0...1, doc: "--vflip") public var vflip: Double
        @ConfigKey("scale", [0.08, 1.0], count: 2, each: .aboveUpTo(0, 1), ordered: true, doc: "--scale") public var scale: [Double]
        @ConfigKey("ratio", [3.0 / 4.0, 4.0 / 3.0], count: 2, each: .aboveUpTo(0, 100), ordered: true, doc: "--ratio")
        public var ratio: [Double]
        @ConfigKey("color_jitter", 0.4, range: 0...10, doc: "--color-jitter") public var colorJitter: Double
        @ConfigKey("auto_augment", doc: "--aa: timm RandAugment string, e.g. rand-m9-mstd0.5-inc1") public var autoAugment: String?
        @ConfigKey("interpolation", .bicubic, choices: [.bilinear, .bicubic, .random], doc: "--train-interpolation; eval uses the model's")
        public var interpolation: Interpolation
        @ConfigKey("crop_pct", range: .aboveUpTo(0, 1), doc: "--crop-pct; unset: the model's") public var cropPct: Double?
        @ConfigKey("mean", count: 3, each: Limits.mean, doc: "--mean; unset: the model's") public var mean: [Double]?
        @ConfigKey("std", count: 3, each: Limits.std, doc: "--std; unset: the model's") public var std: [Double]?
        @ConfigKey("re_prob", 0, range: 0...1, doc: "--reprob") public var reProb: Double
        @ConfigKey("re_mode", .pixel, choices: [.pixel, .const, .rand], doc: "--remode") public var reMode: RandomErasing.Mode
        @ConfigKey("re_count", 1, min: 1, max: 64, doc: "--recount") public var reCount: Int
        @ConfigKey("on_bad_image", .error, choices: [.error, .skip], doc: "error | skip") public var onBadImage: BadImagePolicy
        @ConfigKey("class_limits", each: .closed(1, Double(Limits.samples)), whole: true,
                   doc: "per-class caps on training images (imbalanced-data experiments), by class name")
        public var classLimits: [(String, Double)]
        @ConfigKey("train_list", doc: "CSV `path,label` list instead of folders (paths relative to the list file)") public var trainList: String?
        @ConfigKey("val_list", doc: "CSV `path,label` list for validation, with train_list") public var valList: String?
        // Decoding budgets (FinchData's `ImageLimits`): an image declaring more pixels, a file
        // larger than this, or a JPEG with more scans is refused before it is decoded.
        @ConfigKey("max_image_pixels", ImageLimits.defaultMaxPixels, min: 1, max: 1 << 31, doc: "Pillow's Image.MAX_IMAGE_PIXELS")
        public var maxImagePixels: Int
        @ConfigKey("max_image_bytes", ImageLimits.defaultMaxFileBytes, min: 1, max: 1 << 32, doc: "largest image file read")
        public var maxImageBytes: Int
        @ConfigKey("max_jpeg_scans", ImageLimits.defaultMaxJPEGScans, min: 1, max: 100_000, doc: "most scans of a progressive JPEG")
        public var maxJPEGScans: Int
    }

    public struct Model: ConfigSection {
        @ConfigKey("name", "", doc: "a zoo model, e.g. tf_efficientnet_lite0") public var name: String
        @ConfigKey("num_classes", min: 1, max: Limits.classes, doc: "unset: the dataset's class count") public var numClasses: Int?
        @ConfigKey("pretrained", doc: "safetensors / HDF5 weights in timm names") public var pretrained: String?
        @ConfigKey("drop_rate", 0, range: .fromBelow(0, 1), doc: "--drop") public var dropRate: Double
        @ConfigKey("drop_path_rate", 0, range: .fromBelow(0, 1), doc: "--drop-path") public var dropPathRate: Double
        /// `zeros` lets a short fine-tune learn the head from the first step instead of first
        /// undoing the random weights (timm's EfficientNet head starts at ±1/√classes: logits
        /// spread ~7 on pretrained features).
        @ConfigKey("head_init", .timm, choices: [.timm, .zeros], doc: "the new classifier's start: timm (the architecture's init) or zeros")
        public var headInit: HeadInit
    }

    public struct Finetune: ConfigSection {
        @ConfigKey("mode", .full, choices: [.full, .head, .partial], doc: "full | head | partial") public var mode: FineTuning.Mode
        @ConfigKey("unfreeze", [], doc: "partial: prefixes that train") public var unfreeze: [String]
        @ConfigKey("freeze_bn", false, doc: "BatchNorm in eval mode while training") public var freezeBN: Bool
        @ConfigKey("unfreeze_at_epoch", min: 0, max: Limits.epochs, doc: "head first, then everything from this epoch")
        public var unfreezeAtEpoch: Int?
    }

    public struct Optimizer: ConfigSection {
        @ConfigKey("name", .sgd, choices: [.sgd, .momentum, .adamw], doc: "--opt (timm's sgd is Nesterov momentum)")
        public var name: OptimizerName
        @ConfigKey("lr", range: 0...10, doc: "--lr; unset: lr_base × batch / lr_base_size") public var lr: Double?
        @ConfigKey("lr_base", 0.1, range: 0...10, doc: "--lr-base") public var lrBase: Double
        @ConfigKey("lr_base_size", 256, min: 1, max: Limits.batchSize, doc: "--lr-base-size") public var lrBaseSize: Int
        @ConfigKey("lr_base_scale", .auto, choices: [.auto, .linear, .sqrt], doc: "--lr-base-scale: \"\" (sqrt for adam-family, else linear) | linear | sqrt")
        public var lrBaseScale: LRBaseScale
        @ConfigKey("weight_decay", 2e-5, range: 0...10, doc: "--weight-decay") public var weightDecay: Double
        @ConfigKey("momentum", 0.9, range: 0...0.9999, doc: "--momentum") public var momentum: Double
        @ConfigKey("betas", count: 2, each: .fromBelow(0, 1), doc: "--opt-betas (adamw)") public var betas: [Double]?
        @ConfigKey("eps", range: .aboveUpTo(0, 1), doc: "--opt-eps (adamw)") public var eps: Double?
        @ConfigKey("layer_decay", range: .aboveUpTo(0, 1), doc: "--layer-decay") public var layerDecay: Double?
        @ConfigKey("layer_decay_min_scale", 0, range: 0...1, doc: "floor of the layer-decay scale") public var layerDecayMinScale: Double
        @ConfigKey("layer_lr", each: .closed(0, 10), doc: "module prefix → absolute lr") public var layerLR: [(String, Double)]
        @ConfigKey("layer_lr_multiplier", each: .closed(0, 1000), doc: "module prefix → lr multiplier")
        public var layerLRMultiplier: [(String, Double)]
        @ConfigKey("clip_grad", range: .aboveUpTo(0, 1e6), doc: "--clip-grad") public var clipGrad: Double?
        @ConfigKey("clip_mode", .norm, choices: [.norm, .value], doc: "--clip-mode") public var clipMode: ClipMode
        @ConfigKey("accumulation_steps", 1, min: 1, max: 1024, doc: "--grad-accum-steps") public var accumulationSteps: Int
    }

    public struct Schedule: ConfigSection {
        @ConfigKey("name", .cosine, choices: [.cosine, .step, .multistep, .plateau, .constant, .none], doc: "--sched")
        public var name: ScheduleName
        @ConfigKey("epochs", 300, min: 1, max: Limits.epochs, doc: "--epochs") public var epochs: Int
        @ConfigKey("warmup_epochs", 5, min: 0, max: Limits.epochs, doc: "--warmup-epochs") public var warmupEpochs: Int
        @ConfigKey("warmup_lr", 1e-5, range: 0...10, doc: "--warmup-lr") public var warmupLR: Double
        @ConfigKey("min_lr", 0, range: 0...10, doc: "--min-lr") public var minLR: Double
        @ConfigKey("decay_epochs", 90, min: 1, max: Limits.epochs, doc: "--decay-epochs (step)") public var decayEpochs: Int
        @ConfigKey("decay_milestones", [90, 180, 270], min: 1, max: Limits.epochs, doc: "--decay-milestones (multistep)")
        public var decayMilestones: [Int]
        @ConfigKey("decay_rate", 0.1, range: .aboveUpTo(0, 1), doc: "--decay-rate") public var decayRate: Double
        @ConfigKey("patience_epochs", 10, min: 0, max: Limits.epochs, doc: "--patience-epochs (plateau)") public var patienceEpochs: Int
        @ConfigKey("warmup_prefix", false, doc: "--warmup-prefix") public var warmupPrefix: Bool
        @ConfigKey("on_updates", false, doc: "--sched-on-updates") public var onUpdates: Bool
    }

    public struct Mixup: ConfigSection {
        @ConfigKey("mixup_alpha", 0, range: 0...100, doc: "--mixup") public var mixupAlpha: Double
        @ConfigKey("cutmix_alpha", 0, range: 0...100, doc: "--cutmix") public var cutmixAlpha: Double
        @ConfigKey("cutmix_minmax", count: 2, each: .aboveUpTo(0, 1), ordered: true, doc: "--cutmix-minmax") public var cutmixMinMax: [Double]?
        @ConfigKey("prob", 1, range: 0...1, doc: "--mixup-prob") public var prob: Double
        @ConfigKey("switch_prob", 0.5, range: 0...1, doc: "--mixup-switch-prob") public var switchProb: Double
        @ConfigKey("mode", .batch, choices: [.batch, .pair, .elem], doc: "--mixup-mode") public var mode: FinchData.Mixup.Mode
        @ConfigKey("correct_lam", true, doc: "correct lambda for clipped CutMix boxes") public var correctLam: Bool
        @ConfigKey("label_smoothing", 0.1, range: .fromBelow(0, 1), doc: "--smoothing") public var labelSmoothing: Double
        public var enabled: Bool { (mixupAlpha > 0 || cutmixAlpha > 0 || cutmixMinMax != nil) && prob > 0 }
    }

    public struct Teacher: ConfigSection {
        @ConfigKey("name", "", doc: "the teacher's zoo model") public var name: String
        @ConfigKey("checkpoint", "", doc: "the teacher's weights (safetensors, HDF5 or a Finch checkpoint)") public var checkpoint: String
        @ConfigKey("num_classes", min: 1, max: Limits.classes, doc: "unset: the student's") public var numClasses: Int?
        @ConfigKey("image_size", min: Limits.minImageSize, max: Limits.maxImageSize, doc: "unset: the student's input size")
        public var imageSize: Int?
        @ConfigKey("mean", count: 3, each: Limits.mean, doc: "unset: the teacher model's") public var mean: [Double]?
        @ConfigKey("std", count: 3, each: Limits.std, doc: "unset: the teacher model's") public var std: [Double]?
        @ConfigKey("view", .own, choices: [.own, .resized],
                   doc: "with an image_size other than the student's: own = each training photo rendered again at image_size with the student's augmentation draws (crop box, flip, jitter, RandAugment; MixUp/CutMix by the same draws), normalised with the teacher's mean/std; resized = the student's batch resized bilinearly (timm's F.interpolate)")
        public var view: Distillation.TeacherView
    }

    public struct Distill: ConfigSection {
        @ConfigSubsection("teacher", doc: "the teacher model") public var teacher: Teacher
        @ConfigKey("alpha", 0.5, range: 0...1, doc: "weight of the distillation term") public var alpha: Double
        @ConfigKey("temperature", 4, range: 0.01...100, doc: "soft: softmax temperature") public var temperature: Double
        @ConfigKey("kind", .soft, choices: [.soft, .hard], doc: "soft | hard") public var kind: Distillation.Kind
    }

    public struct Ema: ConfigSection {
        @ConfigKey("decay", 0.9998, range: 0...1, doc: "--model-ema-decay") public var decay: Double
        @ConfigKey("warmup", false, doc: "--model-ema-warmup") public var warmup: Bool
        @ConfigKey("evaluate", true, doc: "also evaluate the EMA weights each epoch") public var evaluate: Bool
    }

    public struct Checkpointing: ConfigSection {
        @ConfigKey("every", 1, min: 1, max: Limits.epochs, doc: "epochs between last.h5 writes") public var every: Int
        @ConfigKey("every_steps", min: 1, max: Limits.steps, doc: "also every N optimizer steps") public var everySteps: Int?
        @ConfigKey("keep", 10, min: 0, max: Limits.epochs, doc: "--checkpoint-hist") public var keep: Int
        @ConfigKey("monitor", "val/top1", doc: "--eval-metric") public var monitor: String
        @ConfigKey("mode", .auto, choices: [.auto, .max, .min], doc: "max | min; auto: min for losses") public var mode: MonitorMode
    }

    public struct EarlyStopping: ConfigSection {
        @ConfigKey("monitor", "val/top1", doc: "the metric watched") public var monitor: String
        @ConfigKey("patience", 10, min: 1, max: Limits.epochs, doc: "epochs without improvement before stopping") public var patience: Int
        @ConfigKey("mode", .auto, choices: [.auto, .max, .min], doc: "max | min; auto: min for losses") public var mode: MonitorMode
        @ConfigKey("min_delta", 0, range: 0...1e9, doc: "smallest change that counts as improvement") public var minDelta: Double
    }

    public struct RunLogging: ConfigSection {
        @ConfigKey("tensorboard", true, doc: "TensorBoard event files in the run folder (tensorboard --logdir Experiments/runs)")
        public var tensorboard: Bool
    }

    /// Data-parallel runs under `mpirun` (FinchTrain/Distributed); a single process ignores them.
    public struct DistributedTraining: ConfigSection {
        @ConfigKey("bucket_mb", 25, range: .aboveUpTo(0, 1024), doc: "gradients summed across ranks in buckets of this size (DDP's bucket_cap_mb)")
        public var bucketMB: Double
        @ConfigKey("sync_bn", true, doc: "--sync-bn: training BatchNorm normalises with the whole global batch's statistics (results independent of the rank count)")
        public var syncBN: Bool
        @ConfigKey("dist_bn", .reduce, choices: [.reduce, .broadcast], doc: "--dist-bn, without sync_bn: BatchNorm running statistics averaged over ranks or rank 0's, each epoch")
        public var distBN: DistributedBatchNorm
        @ConfigKey("overlap", true, doc: "gradient buckets summed while backward runs (DDP's overlap); false: after backward")
        public var overlap: Bool
        @ConfigKey("batch_size_per_rank", false, doc: "data.batch_size per rank, as timm's --batch-size: the global batch is batch_size × ranks (and scales the lr)")
        public var batchSizePerRank: Bool
    }

    @ConfigKey("experiment", fileStemOr: "experiment", doc: "the run's folder name; default: the config file's name")
    public var experiment: String
    @ConfigKey("seed", 42, min: 0, max: Limits.seed, doc: "--seed") public var seed: Int
    @ConfigKey("output", "Experiments/runs", doc: "root of run folders") public var outputRoot: String
    @ConfigKey("checkpoints", "Checkpoints", doc: "root of checkpoint folders") public var checkpointRoot: String
    @ConfigKey("log_interval", 50, min: 1, max: Limits.steps, doc: "--log-interval") public var logInterval: Int
    @ConfigSubsection("data", doc: "dataset, loader and augmentation") public var data: Data
    @ConfigSubsection("model", doc: "the trained model") public var model: Model
    @ConfigSubsection("finetune", doc: "which parameters train") public var finetune: Finetune
    @ConfigSubsection("optimizer", doc: "optimizer and learning rates") public var optimizer: Optimizer
    @ConfigSubsection("schedule", doc: "learning-rate schedule and length") public var schedule: Schedule
    @ConfigSubsection("mixup", doc: "MixUp/CutMix and label smoothing") public var mixup: Mixup
    @ConfigSubsection(optional: "distill", doc: "knowledge distillation from a teacher") public var distill: Distill?
    @ConfigSubsection(optional: "ema", doc: "model EMA") public var ema: Ema?
    @ConfigSubsection("checkpoint", doc: "checkpoint writing and the best-epoch metric") public var checkpoint: Checkpointing
    @ConfigSubsection(optional: "early_stopping", doc: "stop when a metric stops improving") public var earlyStopping: EarlyStopping?
    @ConfigSubsection("logging", doc: "what the run folder records besides metrics.jsonl") public var logging: RunLogging
    @ConfigSubsection("distributed", doc: "data-parallel runs under mpirun") public var distributed: DistributedTraining

    /// The config with every default filled in, as YAML (saved with each run).
    @NotAConfigKey public private(set) var resolvedYAML: String = ""
    /// Where it was read from (for messages).
    @NotAConfigKey public private(set) var source: String = ""
    /// Keys given with a non-default value (full paths), for refusing settings that cannot act.
    @NotAConfigKey var changedKeys: Set<String> = []
    /// The folder of the config file (`load`), against which the paths it wrote resolve first
    /// (`ConfigPaths.swift`); nil for a config parsed from text.
    @NotAConfigKey public internal(set) var configDirectory: URL? = nil
    /// Path keys whose value the file wrote (not a default or a `--set`).
    @NotAConfigKey var pathsFromFile: Set<String> = []
}

extension TrainConfig {
    /// Reads `url`, applies `--set key.path=value` overrides, validates everything, fills defaults.
    public static func load(_ url: URL, overrides: [String] = []) throws -> TrainConfig {
        let name = url.path
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ConfigError(file: name, key: "", message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: name, key: "", message: "is not UTF-8 text")
        }
        var c: TrainConfig
        do {
            c = try parse(text, source: name, overrides: overrides, defaultExperiment: url.deletingPathExtension().lastPathComponent)
        } catch let e as ConfigError where (try? TimmArgsConversion.convert(text, source: name)) != nil {
            // timm's flat args.yaml fails on its first key; say what the file is and how to use it.
            throw ConfigError(file: e.file, key: e.key, message: e.message + " (this is a timm args.yaml: convert it with `finch config from-timm \(name) --output finch.yaml`)")
        }
        c.configDirectory = url.absoluteURL.deletingLastPathComponent().standardizedFileURL
        return c
    }

    public static func parse(_ text: String, source: String, overrides: [String] = [],
                             defaultExperiment: String = "experiment") throws -> TrainConfig {
        var node: Node
        do {
            node = try Yams.compose(yaml: text) ?? Node([(Node, Node)]())
        } catch {
            throw ConfigError(file: source, key: "", message: "is not valid YAML: \(error)")
        }
        let fileNode = node
        for o in overrides { node = try applyOverride(o, to: node, source: source) }
        let r = try ConfigReader(file: source, path: "", node: node)
        r.fileStem = defaultExperiment
        var c = try read(from: r)
        try r.finish()
        c.changedKeys = r.changed
        c.source = source
        c.pathsFromFile = pathsWritten(in: fileNode, resolved: c)
        try c.validate()
        try c.resolveMonitors(source: source)
        c.resolvedYAML = (try? Yams.serialize(node: r.resolvedNode)) ?? ""
        return c
    }

    /// Bounds on config numbers beyond which a value is a typo or an attack, not a recipe.
    public enum Limits {
        public static let minImageSize = 8
        public static let maxImageSize = 4096
        public static let batchSize = 65_536
        public static let workers = 256
        public static let samples = 1_000_000_000
        public static let classes = 100_000
        public static let epochs = 100_000
        public static let steps = 1_000_000_000
        public static let seed = Int(UInt32.max)
        /// Per-channel normalisation in timm's units: images scaled to [0, 1] (not 0–255 pixel values).
        static let mean = NumberRange.closed(0, 1)
        static let std = NumberRange.aboveUpTo(0, 1)
    }

    /// timm's rule when `lr` is not given: lr_base × global batch / lr_base_size, with square-root
    /// scaling for adaptive optimizers (Adam family) and linear otherwise.
    public var effectiveLR: Double {
        if let lr = optimizer.lr { return lr }
        let ratio = Double(data.batchSize * optimizer.accumulationSteps) / Double(optimizer.lrBaseSize)
        let scale = optimizer.lrBaseScale == .auto ? (optimizer.name == .adamw ? .sqrt : .linear) : optimizer.lrBaseScale
        return optimizer.lrBase * (scale == .sqrt ? ratio.squareRoot() : ratio)
    }
}
