import Foundation
import Yams
import FinchData

/// The training recipe, section by section as in the design notes. Defaults are timm's
/// `train.py` defaults (its option names in comments) unless a note says why Finch differs.
public struct TrainConfig {
    public struct Data {
        public var root: String
        public var trainSplit: String            // folder under root (ImageFolder)
        public var valSplit: String
        public var valFraction: Double           // stratified split when root has no val/ folder
        public var imageSize: Int?               // --img-size; nil: the model's pretrained input size
        public var batchSize: Int                // --batch-size 128
        public var workers: Int                  // --workers 4; 2 here: the machines have 2 cores
        public var sampler: String               // random | sequential | weighted (class-balanced)
        public var numSamples: Int?              // weighted: draws per epoch (default: dataset size)
        public var replacement: Bool
        public var dropLast: Bool
        public var hflip: Double                 // --hflip 0.5
        public var vflip: Double                 // --vflip 0
        public var scale: [Double]               // --scale 0.08 1.0
        public var ratio: [Double]               // --ratio 3/4 4/3
        public var colorJitter: Double           // --color-jitter 0.4
        public var autoAugment: String?          // --aa: timm RandAugment string, e.g. rand-m9-mstd0.5-inc1
        public var interpolation: String         // --train-interpolation; eval uses the model's
        public var cropPct: Double?              // --crop-pct; nil: the model's
        public var mean: [Double]?               // --mean; nil: the model's
        public var std: [Double]?
        public var reProb: Double                // --reprob 0
        public var reMode: String                // --remode pixel
        public var reCount: Int                  // --recount 1
        public var onBadImage: String            // error | skip
        /// Per-class caps on training images (imbalanced-data experiments), by class name.
        public var classLimits: [(String, Double)]
        /// CSV `path,label` lists instead of folders (paths relative to the list file).
        public var trainList: String?
        public var valList: String?
        /// Decoding budgets (FinchData's `ImageLimits`): an image declaring more pixels, a file
        /// larger than this, or a JPEG with more scans is refused before it is decoded.
        public var maxImagePixels: Int             // Pillow's Image.MAX_IMAGE_PIXELS, 89,478,485
        public var maxImageBytes: Int
        public var maxJPEGScans: Int
    }

    public struct Model {
        public var name: String
        public var numClasses: Int?              // nil: the dataset's class count
        public var pretrained: String?           // safetensors / HDF5 weights in timm names
        public var dropRate: Double              // --drop 0
        public var dropPathRate: Double          // --drop-path
        /// The new classifier's start: `timm` (the architecture's init) or `zeros`, which lets a
        /// short fine-tune learn the head from the first step instead of first undoing the
        /// random weights (timm's EfficientNet head starts at ±1/√classes: logits spread ~7 on
        /// pretrained features).
        public var headInit: String = "timm"
    }

    public struct Finetune {
        public var mode: String                  // full | head | partial
        public var unfreeze: [String]            // partial: prefixes that train
        public var freezeBN: Bool                // BatchNorm in eval mode while training
        public var unfreezeAtEpoch: Int?         // head first, then everything from this epoch
    }

    public struct Optimizer {
        public var name: String                  // --opt sgd (timm's "sgd" is Nesterov momentum) | momentum | adamw
        public var lr: Double?                   // --lr; nil: lr_base × batch / lr_base_size
        public var lrBase: Double                // --lr-base 0.1
        public var lrBaseSize: Int               // --lr-base-size 256
        public var lrBaseScale: String           // --lr-base-scale: "" (sqrt for adam-family, else linear) | linear | sqrt
        public var weightDecay: Double           // --weight-decay 2e-5
        public var momentum: Double              // --momentum 0.9
        public var betas: [Double]?              // --opt-betas
        public var eps: Double?                  // --opt-eps
        public var layerDecay: Double?           // --layer-decay
        public var layerDecayMinScale: Double
        public var layerLR: [(String, Double)]   // prefix → absolute lr
        public var layerLRMultiplier: [(String, Double)] // prefix → multiplier
        public var clipGrad: Double?             // --clip-grad
        public var clipMode: String              // --clip-mode norm | value
        public var accumulationSteps: Int        // --grad-accum-steps 1
    }

    public struct Schedule {
        public var name: String                  // --sched cosine | step | multistep | plateau | constant | none
        public var epochs: Int                   // --epochs 300
        public var warmupEpochs: Int             // --warmup-epochs 5
        public var warmupLR: Double              // --warmup-lr 1e-5
        public var minLR: Double                 // --min-lr 0
        public var decayEpochs: Int              // --decay-epochs 90
        public var decayMilestones: [Int]        // --decay-milestones 90 180 270
        public var decayRate: Double             // --decay-rate 0.1
        public var patienceEpochs: Int           // --patience-epochs 10
        public var warmupPrefix: Bool            // --warmup-prefix
        public var onUpdates: Bool               // --sched-on-updates
    }

    public struct Mixup {
        public var mixupAlpha: Double            // --mixup 0
        public var cutmixAlpha: Double           // --cutmix 0
        public var cutmixMinMax: [Double]?       // --cutmix-minmax
        public var prob: Double                  // --mixup-prob 1.0
        public var switchProb: Double            // --mixup-switch-prob 0.5
        public var mode: String                  // --mixup-mode batch | pair | elem
        public var correctLam: Bool
        public var labelSmoothing: Double        // --smoothing 0.1
        public var enabled: Bool { (mixupAlpha > 0 || cutmixAlpha > 0 || cutmixMinMax != nil) && prob > 0 }
    }

    public struct Teacher {
        public var name: String
        public var checkpoint: String
        public var numClasses: Int?
        public var imageSize: Int?
        public var mean: [Double]?
        public var std: [Double]?
    }

    public struct Distill {
        public var teacher: Teacher
        public var alpha: Double
        public var temperature: Double
        public var kind: String                  // soft | hard
    }

    public struct Ema {
        public var decay: Double                 // --model-ema-decay 0.9998
        public var warmup: Bool                  // --model-ema-warmup
        public var evaluate: Bool                // also evaluate the EMA weights each epoch
    }

    public struct Checkpointing {
        public var every: Int                    // epochs between last.h5 writes
        public var everySteps: Int?              // also every N optimizer steps
        public var keep: Int                     // --checkpoint-hist 10
        public var monitor: String               // --eval-metric top1
        public var mode: String                  // max | min
    }

    public struct EarlyStopping {
        public var monitor: String
        public var patience: Int
        public var mode: String
        public var minDelta: Double
    }

    public var experiment: String
    public var seed: Int
    public var outputRoot: String
    public var checkpointRoot: String
    public var logInterval: Int                  // --log-interval 50
    public var data: Data
    public var model: Model
    public var finetune: Finetune
    public var optimizer: Optimizer
    public var schedule: Schedule
    public var mixup: Mixup
    public var distill: Distill?
    public var ema: Ema?
    public var checkpoint: Checkpointing
    public var earlyStopping: EarlyStopping?

    /// The config with every default filled in, as YAML (saved with each run).
    public private(set) var resolvedYAML: String = ""
    /// Where it was read from (for messages).
    public private(set) var source: String = ""
    /// Keys given with a non-default value (full paths), for refusing settings that cannot act.
    var changedKeys: Set<String> = []
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
        return try parse(text, source: name, overrides: overrides,
                         defaultExperiment: url.deletingPathExtension().lastPathComponent)
    }

    public static func parse(_ text: String, source: String, overrides: [String] = [],
                             defaultExperiment: String = "experiment") throws -> TrainConfig {
        var node: Node
        do {
            node = try Yams.compose(yaml: text) ?? Node([(Node, Node)]())
        } catch {
            throw ConfigError(file: source, key: "", message: "is not valid YAML: \(error)")
        }
        for o in overrides { node = try applyOverride(o, to: node, source: source) }
        let r = try ConfigReader(file: source, path: "", node: node)
        var c = try read(r, defaultExperiment: defaultExperiment)
        try r.finish()
        c.changedKeys = r.changed
        try c.validate(source: source)
        try c.resolveMonitors(source: source)
        c.source = source
        c.resolvedYAML = (try? Yams.serialize(node: r.resolvedNode)) ?? ""
        return c
    }

    /// `a.b.c=value`: the value is read as YAML, so numbers, booleans and lists keep their types.
    static func applyOverride(_ o: String, to root: Node, source: String) throws -> Node {
        guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
            throw ConfigError(file: "--set", key: o, message: "expected key.path=value")
        }
        let keyText = String(o[..<eq])
        let path = keyText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // Sections nest three deep (distill.teacher.image_size); a path of thousands of parts would
        // only recurse the stack away below.
        guard path.count <= 8 else {
            throw ConfigError(file: "--set", key: String(keyText.prefix(60)) + "…", message: "has \(path.count) parts; config keys have at most 8")
        }
        if let bad = path.first(where: { $0.isEmpty || $0.contains(where: { $0.isWhitespace }) }) {
            throw ConfigError(file: "--set", key: keyText, message: bad.isEmpty ? "empty key in the path (expected key.path=value, e.g. optimizer.lr=1e-4)"
                              : "'\(bad)' contains spaces (expected key.path=value, e.g. optimizer.lr=1e-4)")
        }
        let valueText = String(o[o.index(after: eq)...])
        if valueText.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ConfigError(file: "--set", key: keyText, message: "has no value (write \(keyText)=null for the default)")
        }
        let value: Node
        do { value = try Yams.compose(yaml: valueText) ?? Node("null", Tag(.null)) } catch {
            throw ConfigError(file: "--set", key: String(o[..<eq]), message: "value '\(valueText)' is not valid YAML")
        }
        func set(_ node: Node, _ keys: ArraySlice<String>) throws -> Node {
            guard let k = keys.first else { return value }
            var pairs: [(Node, Node)] = []
            if case .mapping(let m) = node { pairs = m.map { ($0.key, $0.value) } }
            else if node.null == nil, case .scalar = node {
                throw ConfigError(file: "--set", key: path.joined(separator: "."), message: "'\(k)' is inside a value, not a section")
            }
            if let i = pairs.firstIndex(where: { $0.0.string == k }) {
                pairs[i].1 = try set(pairs[i].1, keys.dropFirst())
            } else {
                pairs.append((Node(k), try set(Node([(Node, Node)]()), keys.dropFirst())))
            }
            return Node(pairs)
        }
        return try set(root, path[...])
    }

    private static func read(_ r: ConfigReader, defaultExperiment: String) throws -> TrainConfig {
        let experiment = try r.string("experiment", defaultExperiment)
        let seed = try r.int("seed", 42, min: 0, max: Limits.seed)
        let outputRoot = try r.string("output", "Experiments/runs")
        let checkpointRoot = try r.string("checkpoints", "Checkpoints")
        let logInterval = try r.int("log_interval", 50, min: 1, max: Limits.steps)
        let data = try r.section("data") { d in
            Data(root: try d.string("root", ""), trainSplit: try d.string("train_split", "train"),
                 valSplit: try d.string("val_split", "val"), valFraction: try d.double("val_fraction", 0.15, range: .aboveUpTo(0, 0.9)),
                 imageSize: try d.optionalInt("image_size", min: Limits.minImageSize, max: Limits.maxImageSize),
                 batchSize: try d.int("batch_size", 128, min: 1, max: Limits.batchSize),
                 workers: try d.int("workers", 2, min: 0, max: Limits.workers),
                 sampler: try d.choice("sampler", "random", ["random", "sequential", "weighted"]),
                 numSamples: try d.optionalInt("num_samples", min: 1, max: Limits.samples), replacement: try d.bool("replacement", true),
                 dropLast: try d.bool("drop_last", true),
                 hflip: try d.double("hflip", 0.5, range: 0...1), vflip: try d.double("vflip", 0, range: 0...1),
                 scale: try d.doubles("scale", [0.08, 1.0], count: 2, each: .aboveUpTo(0, 1), ordered: true),
                 ratio: try d.doubles("ratio", [3.0 / 4.0, 4.0 / 3.0], count: 2, each: .aboveUpTo(0, 100), ordered: true),
                 colorJitter: try d.double("color_jitter", 0.4, range: 0...10), autoAugment: try d.optionalString("auto_augment"),
                 interpolation: try d.choice("interpolation", "bicubic", ["bilinear", "bicubic", "random"]),
                 cropPct: try d.optionalDouble("crop_pct", range: .aboveUpTo(0, 1)), mean: try d.optionalDoubles("mean", count: 3, each: Limits.mean),
                 std: try d.optionalDoubles("std", count: 3, each: Limits.std), reProb: try d.double("re_prob", 0, range: 0...1),
                 reMode: try d.choice("re_mode", "pixel", ["pixel", "const", "rand"]), reCount: try d.int("re_count", 1, min: 1, max: 64),
                 onBadImage: try d.choice("on_bad_image", "error", ["error", "skip"]),
                 classLimits: try d.numberMap("class_limits", each: .closed(1, Double(Limits.samples)), whole: true),
                 trainList: try d.optionalString("train_list"), valList: try d.optionalString("val_list"),
                 maxImagePixels: try d.int("max_image_pixels", ImageLimits.defaultMaxPixels, min: 1, max: 1 << 31),
                 maxImageBytes: try d.int("max_image_bytes", ImageLimits.defaultMaxFileBytes, min: 1, max: 1 << 32),
                 maxJPEGScans: try d.int("max_jpeg_scans", ImageLimits.defaultMaxJPEGScans, min: 1, max: 100_000))
        }
        let model = try r.section("model") { m in
            Model(name: try m.string("name", ""), numClasses: try m.optionalInt("num_classes", min: 1, max: Limits.classes),
                  pretrained: try m.optionalString("pretrained"), dropRate: try m.double("drop_rate", 0, range: .fromBelow(0, 1)),
                  dropPathRate: try m.double("drop_path_rate", 0, range: .fromBelow(0, 1)),
                  headInit: try m.choice("head_init", "timm", ["timm", "zeros"]))
        }
        let finetune = try r.section("finetune") { f in
            Finetune(mode: try f.choice("mode", "full", ["full", "head", "partial"]), unfreeze: try f.strings("unfreeze", []),
                     freezeBN: try f.bool("freeze_bn", false), unfreezeAtEpoch: try f.optionalInt("unfreeze_at_epoch", min: 0, max: Limits.epochs))
        }
        let optimizer = try r.section("optimizer") { o in
            Optimizer(name: try o.choice("name", "sgd", ["sgd", "momentum", "adamw"]), lr: try o.optionalDouble("lr", range: 0...10),
                      lrBase: try o.double("lr_base", 0.1, range: 0...10), lrBaseSize: try o.int("lr_base_size", 256, min: 1, max: Limits.batchSize),
                      lrBaseScale: try o.choice("lr_base_scale", "", ["", "linear", "sqrt"]),
                      weightDecay: try o.double("weight_decay", 2e-5, range: 0...10), momentum: try o.double("momentum", 0.9, range: 0...0.9999),
                      betas: try o.optionalDoubles("betas", count: 2, each: .fromBelow(0, 1)), eps: try o.optionalDouble("eps", range: .aboveUpTo(0, 1)),
                      layerDecay: try o.optionalDouble("layer_decay", range: .aboveUpTo(0, 1)), layerDecayMinScale: try o.double("layer_decay_min_scale", 0, range: 0...1),
                      layerLR: try o.numberMap("layer_lr", each: .closed(0, 10)), layerLRMultiplier: try o.numberMap("layer_lr_multiplier", each: .closed(0, 1000)),
                      clipGrad: try o.optionalDouble("clip_grad", range: .aboveUpTo(0, 1e6)), clipMode: try o.choice("clip_mode", "norm", ["norm", "value"]),
                      accumulationSteps: try o.int("accumulation_steps", 1, min: 1, max: 1024))
        }
        let schedule = try r.section("schedule") { s in
            Schedule(name: try s.choice("name", "cosine", ["cosine", "step", "multistep", "plateau", "constant", "none"]),
                     epochs: try s.int("epochs", 300, min: 1, max: Limits.epochs), warmupEpochs: try s.int("warmup_epochs", 5, min: 0, max: Limits.epochs),
                     warmupLR: try s.double("warmup_lr", 1e-5, range: 0...10), minLR: try s.double("min_lr", 0, range: 0...10),
                     decayEpochs: try s.int("decay_epochs", 90, min: 1, max: Limits.epochs),
                     decayMilestones: try s.ints("decay_milestones", [90, 180, 270], min: 1, max: Limits.epochs),
                     decayRate: try s.double("decay_rate", 0.1, range: .aboveUpTo(0, 1)), patienceEpochs: try s.int("patience_epochs", 10, min: 0, max: Limits.epochs),
                     warmupPrefix: try s.bool("warmup_prefix", false), onUpdates: try s.bool("on_updates", false))
        }
        let mixup = try r.section("mixup") { m in
            Mixup(mixupAlpha: try m.double("mixup_alpha", 0, range: 0...100), cutmixAlpha: try m.double("cutmix_alpha", 0, range: 0...100),
                  cutmixMinMax: try m.optionalDoubles("cutmix_minmax", count: 2, each: .aboveUpTo(0, 1), ordered: true), prob: try m.double("prob", 1, range: 0...1),
                  switchProb: try m.double("switch_prob", 0.5, range: 0...1), mode: try m.choice("mode", "batch", ["batch", "pair", "elem"]),
                  correctLam: try m.bool("correct_lam", true), labelSmoothing: try m.double("label_smoothing", 0.1, range: .fromBelow(0, 1)))
        }
        let distill = try r.optionalSection("distill") { d in
            Distill(teacher: try d.section("teacher") { t in
                        Teacher(name: try t.string("name", ""), checkpoint: try t.string("checkpoint", ""),
                                numClasses: try t.optionalInt("num_classes", min: 1, max: Limits.classes),
                                imageSize: try t.optionalInt("image_size", min: Limits.minImageSize, max: Limits.maxImageSize),
                                mean: try t.optionalDoubles("mean", count: 3, each: Limits.mean), std: try t.optionalDoubles("std", count: 3, each: Limits.std))
                    },
                    alpha: try d.double("alpha", 0.5, range: 0...1), temperature: try d.double("temperature", 4, range: 0.01...100),
                    kind: try d.choice("kind", "soft", ["soft", "hard"]))
        }
        let ema = try r.optionalSection("ema") { e in
            Ema(decay: try e.double("decay", 0.9998, range: 0...1), warmup: try e.bool("warmup", false), evaluate: try e.bool("evaluate", true))
        }
        let checkpoint = try r.section("checkpoint") { c in
            Checkpointing(every: try c.int("every", 1, min: 1, max: Limits.epochs), everySteps: try c.optionalInt("every_steps", min: 1, max: Limits.steps),
                          keep: try c.int("keep", 10, min: 0, max: Limits.epochs), monitor: try c.string("monitor", "val/top1"),
                          mode: try c.choice("mode", "auto", ["auto", "max", "min"]))
        }
        let earlyStopping = try r.optionalSection("early_stopping") { e in
            EarlyStopping(monitor: try e.string("monitor", "val/top1"), patience: try e.int("patience", 10, min: 1, max: Limits.epochs),
                          mode: try e.choice("mode", "auto", ["auto", "max", "min"]), minDelta: try e.double("min_delta", 0, range: 0...1e9))
        }
        return TrainConfig(experiment: experiment, seed: seed, outputRoot: outputRoot, checkpointRoot: checkpointRoot,
                           logInterval: logInterval, data: data, model: model, finetune: finetune, optimizer: optimizer,
                           schedule: schedule, mixup: mixup, distill: distill, ema: ema, checkpoint: checkpoint,
                           earlyStopping: earlyStopping)
    }

    private func validate(source: String) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: source, key: key, message: message) }
        if data.root.isEmpty && data.trainList == nil { throw fail("data.root", "is required (the dataset folder, e.g. Datasets/flowers, or data.train_list)") }
        if model.name.isEmpty { throw fail("model.name", "is required (a zoo model, e.g. tf_efficientnet_lite0)") }
        if finetune.mode == "partial" && finetune.unfreeze.isEmpty {
            throw fail("finetune.unfreeze", "partial fine-tuning needs the prefixes to train, e.g. [blocks.5, conv_head]")
        }
        // Keys that only one setting of another key uses: given with any other, they would do nothing.
        if optimizer.name != "adamw" {
            if optimizer.betas != nil { throw fail("optimizer.betas", "only adamw uses betas (optimizer.name is \(optimizer.name))") }
            if optimizer.eps != nil { throw fail("optimizer.eps", "only adamw uses eps (optimizer.name is \(optimizer.name))") }
        }
        if data.numSamples != nil && data.sampler != "weighted" {
            throw fail("data.num_samples", "applies to sampler: weighted only (data.sampler is \(data.sampler))")
        }
        if data.valList != nil && data.trainList == nil {
            throw fail("data.val_list", "is used with data.train_list; for folders set data.val_split")
        }
        if !finetune.unfreeze.isEmpty && finetune.mode != "partial" {
            throw fail("finetune.unfreeze", "applies to mode: partial only (finetune.mode is \(finetune.mode))")
        }
        if let u = finetune.unfreezeAtEpoch {
            if finetune.mode == "partial" {
                throw fail("finetune.unfreeze_at_epoch", "trains the head, then everything: it replaces mode: partial; use one of the two")
            }
            let total = schedule.epochs + (schedule.warmupPrefix ? schedule.warmupEpochs : 0)
            if u >= total { throw fail("finetune.unfreeze_at_epoch", "\(u) is not before the run's end (\(total) epochs): the backbone would never train") }
        }
        // A non-default value that the rest of the config leaves without effect (the written-back
        // config holds every default, so only values a user changed count).
        func inert(_ key: String, unless active: Bool, _ why: String) throws {
            if !active && changedKeys.contains(key) { throw fail(key, "has no effect here: \(why)") }
        }
        let schedules = "schedule.name is \(schedule.name)"
        try inert("optimizer.momentum", unless: optimizer.name != "adamw", "adamw has no momentum (optimizer.betas plays that part)")
        try inert("optimizer.clip_mode", unless: optimizer.clipGrad != nil, "no optimizer.clip_grad is set")
        for k in ["lr_base", "lr_base_size", "lr_base_scale"] {
            try inert("optimizer.\(k)", unless: optimizer.lr == nil, "optimizer.lr is set, and \(k) only derives a rate when it is not")
        }
        try inert("schedule.decay_epochs", unless: schedule.name == "step", "only the step schedule uses it (\(schedules))")
        try inert("schedule.decay_milestones", unless: schedule.name == "multistep", "only the multistep schedule uses it (\(schedules))")
        try inert("schedule.decay_rate", unless: ["step", "multistep", "plateau"].contains(schedule.name),
                  "only the step, multistep and plateau schedules use it (\(schedules))")
        try inert("schedule.patience_epochs", unless: schedule.name == "plateau", "only the plateau schedule uses it (\(schedules))")
        try inert("schedule.warmup_lr", unless: schedule.warmupEpochs > 0, "schedule.warmup_epochs is 0")
        try inert("data.re_mode", unless: data.reProb > 0, "random erasing is off (data.re_prob is 0)")
        try inert("data.re_count", unless: data.reProb > 0, "random erasing is off (data.re_prob is 0)")
        try inert("data.color_jitter", unless: data.autoAugment == nil, "data.auto_augment replaces colour jitter, as in timm")
        if let d = distill {
            try inert("distill.temperature", unless: d.kind == "soft", "hard distillation uses the teacher's argmax, not a temperature")
        }
        if let aa = data.autoAugment {
            // FinchData's own parser, so a bad magnitude or op count fails now, not when the loader starts.
            do { _ = try RandAugment(config: aa) } catch { throw fail("data.auto_augment", "\(error)") }
        }
        if schedule.name == "multistep", zip(schedule.decayMilestones, schedule.decayMilestones.dropFirst()).contains(where: { $0 >= $1 }) {
            throw fail("schedule.decay_milestones", "\(schedule.decayMilestones) must be increasing epochs")
        }
        if let t = distill?.teacher, let k = t.numClasses, let s = model.numClasses, k != s {
            throw fail("distill.teacher.num_classes", "the teacher has \(k) classes but the student (model.num_classes) has \(s); distillation compares the two outputs class by class")
        }
        if let d = distill {
            if d.teacher.name.isEmpty { throw fail("distill.teacher.name", "is required") }
            if d.teacher.checkpoint.isEmpty { throw fail("distill.teacher.checkpoint", "is required (the teacher's weights)") }
        }
        if schedule.warmupEpochs >= schedule.epochs && !schedule.warmupPrefix && schedule.name != "none" {
            throw fail("schedule.warmup_epochs", "\(schedule.warmupEpochs) warmup epochs leave no training in \(schedule.epochs) epochs")
        }
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
        let scale = optimizer.lrBaseScale.isEmpty ? (optimizer.name.contains("adam") ? "sqrt" : "linear") : optimizer.lrBaseScale
        return optimizer.lrBase * (scale == "sqrt" ? ratio.squareRoot() : ratio)
    }
}
