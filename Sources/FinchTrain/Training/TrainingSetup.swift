import Foundation
import FinchTensor
import FinchNN
import FinchData
import FinchIO

/// Everything a run needs, built and validated from a config before the first step, so a bad
/// run fails in the first second: dataset found, classes vs model, weights load, teacher loads,
/// output folders writable.
public struct TrainingSetup {
    public let config: TrainConfig
    public let classes: [String]
    public let trainer: Trainer
    public let runDirectory: URL
    public let checkpointDirectory: URL
    /// The checkpoint file `resume` named (itself, or a folder's `last.h5`).
    public let resumedFrom: URL?

    /// With `resume`, the trainer continues from that checkpoint; it is checked against the run
    /// (model, classes, batches per epoch) before any output folder is created, so a bad one leaves
    /// nothing behind.
    public init(config c: TrainConfig, baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                resume: URL? = nil, communicator: Communicator? = nil) throws {
        // A loaded config is a plain value and may have been edited since it was read.
        try c.validate()
        let c = try communicator.map { try Self.globalBatch(c, ranks: $0.size) } ?? c
        _ = try ProgressMode.from(ProcessInfo.processInfo.environment)
        config = c
        let paths = SetupPaths(config: c, base: baseDirectory)
        let data = try Self.loadData(c, paths)
        classes = data.train.classes
        let numClasses = try Self.checkClassCount(c, classes: classes, root: paths.url("data.root", c.data.root))
        let model = try Self.makeModel(c, numClasses: numClasses, paths)
        let teacher = try Self.loadTeacher(c, numClasses: numClasses, classes: classes, paths)
        let transforms = try Self.makeTransforms(c, model: model)
        let loaders = try Self.makeLoaders(c, data: data, transforms: transforms)
        if let t = teacher, let d = c.distill, let size = d.teacher.imageSize, Distillation.rendersOwnView(c, studentSize: transforms.size) {
            let n = Distillation.teacherNormalization(d.teacher, model: t)
            loaders.train.secondView = Distillation.teacherTransform(student: transforms.train, size: size, mean: n.mean, std: n.std)
            try loaders.train.secondView?.validate()
        }
        // Data-parallel (FinchTrain/Distributed): same run on every rank, each loading its share.
        let parallel = try communicator.map { try Self.shareData(c, data: data, loaders: loaders, over: $0) }
        if let t = teacher, let d = c.distill {
            try Self.checkTeacherOutput(t, imageSize: d.teacher.imageSize ?? transforms.size, numClasses: numClasses, source: c.source)
        }
        let timestamp = RunLayout.newTimestamp(outputRoot: paths.url("output", c.outputRoot), checkpointRoot: paths.url("checkpoints", c.checkpointRoot),
                                               experiment: c.experiment)
        runDirectory = paths.url("output", c.outputRoot).appendingPathComponent(c.experiment).appendingPathComponent(timestamp)
        checkpointDirectory = paths.url("checkpoints", c.checkpointRoot).appendingPathComponent(c.experiment).appendingPathComponent(timestamp)
        trainer = try Self.makeTrainer(c, model: model, teacher: teacher, loaders: loaders, classes: classes, numClasses: numClasses)
        trainer.dataParallel = parallel
        parallel?.attach(to: model)
        resumedFrom = try resume.map { try RunLayout.resumeCheckpoint($0) }
        if let resumedFrom { try trainer.resume(from: resumedFrom) }
        // Rank 0 alone shows progress and writes run logs and checkpoints.
        if let communicator, !communicator.isRoot {
            trainer.progress = ProgressReporter(isTerminal: false, display: nil, plainLines: false, writeLine: { _ in })
            return
        }
        try Self.prepareOutputFolders(run: runDirectory, checkpoints: checkpointDirectory, source: c.source)
        trainer.checkpointDirectory = checkpointDirectory
        trainer.callbacks.append(LatestRunLink(runCheckpoints: checkpointDirectory))
        trainer.runDirectory = runDirectory
        trainer.callbacks.append(try RunLog(directory: runDirectory, configYAML: c.resolvedYAML, classes: classes))
        if !trainer.progress.isTerminal { trainer.callbacks.append(StepLog(interval: c.logInterval)) }
        if c.logging.tensorboard {
            do {
                trainer.callbacks.append(try TensorBoardLog(directory: runDirectory, configYAML: c.resolvedYAML, classes: classes, interval: c.logInterval))
            } catch { throw ConfigError(file: c.source, key: "logging.tensorboard", message: "\(error)") }
        }
        TrainLog.logger.info("\(trainer.parameterGroupTable)")
    }

    /// Config paths resolve by `TrainConfig`'s rule (ConfigPaths.swift): beside the config
    /// file, then in the base directory.
    struct SetupPaths {
        let config: TrainConfig
        let base: URL
        func url(_ key: String, _ p: String) -> URL { config.resolvePath(key, p, base: base) }
        func input(_ key: String, _ p: String) throws -> URL { try config.resolveInput(key, p, base: base) }
    }

    struct SplitData {
        var train: ImageFolder
        var val: ImageFolder
    }

    /// Data: CSV lists, root/train + root/val, or a stratified split of root; then the class caps.
    static func loadData(_ c: TrainConfig, _ paths: SetupPaths) throws -> SplitData {
        let root = paths.url("data.root", c.data.root)
        var train: ImageFolder, val: ImageFolder
        let trainDir = root.appendingPathComponent(c.data.trainSplit), valDir = root.appendingPathComponent(c.data.valSplit)
        if let list = c.data.trainList {
            do {
                train = try ImageFolder(listFile: try paths.input("data.train_list", list))
                if let v = c.data.valList { val = try ImageFolder(listFile: try paths.input("data.val_list", v), classes: train.classes) }
                else { (train, val) = train.stratifiedSplit(valFraction: c.data.valFraction, seed: UInt64(c.seed)) }
            } catch { throw ConfigError(file: c.source, key: "data.train_list", message: "\(error)") }
        } else if FileManager.default.fileExists(atPath: trainDir.path) {
            train = try ImageFolder(root: trainDir)
            if FileManager.default.fileExists(atPath: valDir.path) {
                val = try ImageFolder(root: valDir)
                guard val.classes == train.classes else {
                    throw ConfigError(file: c.source, key: "data.root", message: "val classes \(val.classes) differ from train classes \(train.classes)")
                }
            } else {
                (train, val) = train.stratifiedSplit(valFraction: c.data.valFraction, seed: UInt64(c.seed))
            }
        } else {
            (train, val) = try ImageFolder(root: try paths.input("data.root", c.data.root)).stratifiedSplit(valFraction: c.data.valFraction, seed: UInt64(c.seed))
        }
        if !c.data.classLimits.isEmpty {
            train = try train.limited(Dictionary(uniqueKeysWithValues: c.data.classLimits.map { ($0.0, Int($0.1)) }))
        }
        return SplitData(train: train, val: val)
    }

    /// `model.num_classes`, when given, must be the dataset's class count.
    static func checkClassCount(_ c: TrainConfig, classes: [String], root: URL) throws -> Int {
        let numClasses = c.model.numClasses ?? classes.count
        guard numClasses == classes.count else {
            throw ConfigError(file: c.source, key: "model.num_classes", message: "is \(numClasses) but \(root.path) has \(classes.count) classes (\(classes.joined(separator: ", "))); leave it unset to use the dataset's")
        }
        return numClasses
    }

    /// Model, with pretrained weights (head replaced when the class count differs) and the
    /// config's prefixes checked against its parameters.
    static func makeModel(_ c: TrainConfig, numClasses: Int, _ paths: SetupPaths) throws -> ImageClassifier {
        let model: ImageClassifier
        do {
            model = try ModelRegistry.create(c.model.name, options: ModelOptions(numClasses: numClasses, dropRate: Float(c.model.dropRate),
                                                                                   dropPathRate: Float(c.model.dropPathRate)), seed: UInt64(c.seed))
        } catch { throw ConfigError(file: c.source, key: "model.name", message: "\(error)") }
        if let p = c.model.pretrained {
            let weights = try paths.input("model.pretrained", p)
            do { try model.loadPretrained(weights, replaceHead: true, seed: UInt64(c.seed)) } catch {
                throw ConfigError(file: c.source, key: "model.pretrained", message: "\(error)")
            }
        }
        if c.model.headInit == .zeros {
            noGrad {
                for (name, p) in model.namedParameters() where Module.matches(name, prefixes: model.classifierPrefixes) {
                    p.assign(Tensor.zeros(p.shape))
                }
            }
        }
        model.setRandomSource(RandomSource(RandomGenerator(seed: UInt64(c.seed)).derived(stream: 7)))
        try checkConfigPrefixes(c, model: model)
        return model
    }

    /// Prefixes that match no parameter would silently train everything at the base rate.
    static func checkConfigPrefixes(_ c: TrainConfig, model: ImageClassifier) throws {
        let parameterNames = model.namedParameters().map(\.name)
        try checkPrefixes(c.optimizer.layerLR.map(\.0), key: "optimizer.layer_lr", names: parameterNames, model: c.model.name, source: c.source)
        try checkPrefixes(c.optimizer.layerLRMultiplier.map(\.0), key: "optimizer.layer_lr_multiplier", names: parameterNames,
                          model: c.model.name, source: c.source)
        try checkPrefixes(c.finetune.unfreeze, key: "finetune.unfreeze", names: parameterNames, model: c.model.name, source: c.source)
    }

    /// Teacher from the registry and its weights (safetensors, HDF5 weights or a Finch checkpoint).
    static func loadTeacher(_ c: TrainConfig, numClasses: Int, classes: [String], _ paths: SetupPaths) throws -> ImageClassifier? {
        guard let d = c.distill else { return nil }
        let teacherClasses = d.teacher.numClasses ?? numClasses
        // KL(teacher ‖ student) compares the two outputs class by class: a 1000-class teacher
        // with a 5-class student has no meaning (and once trained to a loss of −5·10³⁰).
        guard teacherClasses == numClasses else {
            throw ConfigError(file: c.source, key: "distill.teacher.num_classes",
                              message: "the teacher has \(teacherClasses) classes but the student has \(numClasses) (\(classes.joined(separator: ", "))); distil from a teacher fine-tuned on the same classes")
        }
        let weights = try paths.input("distill.teacher.checkpoint", d.teacher.checkpoint)
        let teacher: ImageClassifier
        do {
            teacher = try ModelRegistry.create(d.teacher.name, numClasses: teacherClasses)
            try teacher.loadPretrained(weights, replaceHead: false)
        } catch { throw ConfigError(file: c.source, key: "distill.teacher", message: "\(error)") }
        // A Finch checkpoint names its classes: they must be the dataset's, in the same order.
        if let ck = try? Checkpoint.read(weights), !ck.classes.isEmpty, ck.classes != classes {
            throw ConfigError(file: c.source, key: "distill.teacher.checkpoint",
                              message: "\(weights.path) was trained on classes \(ck.classes), the dataset has \(classes)")
        }
        return teacher
    }

    struct Transforms {
        var train: ImageTransform
        var eval: ImageTransform
        var size: Int
    }

    /// Transforms: the model's preprocessing unless the config overrides it.
    static func makeTransforms(_ c: TrainConfig, model: ImageClassifier) throws -> Transforms {
        let pc = model.pretrainedConfig
        let size = c.data.imageSize ?? pc.inputSize
        var trainT = ImageTransform(size: size, training: true)
        trainT.scale = (c.data.scale[0], c.data.scale[1])
        trainT.ratio = (c.data.ratio[0], c.data.ratio[1])
        trainT.hflip = c.data.hflip
        trainT.vflip = c.data.vflip
        trainT.colorJitter = c.data.autoAugment == nil ? c.data.colorJitter : 0
        trainT.interpolation = c.data.interpolation.rawValue
        trainT.mean = c.data.mean.map { $0.map(Float.init) } ?? pc.mean
        trainT.std = c.data.std.map { $0.map(Float.init) } ?? pc.std
        if let aa = c.data.autoAugment {
            do { trainT.randAugment = try RandAugment(config: aa) } catch {
                throw ConfigError(file: c.source, key: "data.auto_augment", message: "\(error)")
            }
            // timm fills uncovered pixels with the dataset mean and uses the train interpolation unless "random".
            let m = trainT.mean.map { UInt8(min(255, (255 * $0).rounded())) }
            trainT.randAugment?.fill = (m[0], m[1], m[2])
            trainT.randAugment?.filter = c.data.interpolation.filter
        }
        if c.data.reProb > 0 {
            trainT.randomErasing = RandomErasing(probability: c.data.reProb, mode: c.data.reMode, maxCount: c.data.reCount)
        }
        var evalT = ImageTransform(size: size, training: false)
        evalT.cropPct = c.data.cropPct ?? Double(pc.cropPct)
        evalT.evalInterpolation = pc.interpolation
        evalT.mean = trainT.mean
        evalT.std = trainT.std
        return Transforms(train: trainT, eval: evalT, size: size)
    }

    /// The training sampler the config names, over the training set's labels.
    static func makeSampler(_ c: TrainConfig, train: ImageFolder) -> Sampler {
        switch c.data.sampler {
        case .sequential: return .sequential
        case .weighted: return .weighted(weights: Sampler.classBalancedWeights(labels: train.labels),
                                         numSamples: c.data.numSamples ?? train.count, replacement: c.data.replacement)
        case .random: return .random
        }
    }

    /// Loaders for both splits, with FinchData's own checks of the combined transform run now, so
    /// a bad value stops the run before any folder is made (the config's ranges were checked when
    /// it was read).
    static func makeLoaders(_ c: TrainConfig, data: SplitData, transforms t: Transforms) throws -> (train: DataLoader, val: DataLoader) {
        let sampler = makeSampler(c, train: data.train)
        let seed = UInt64(c.seed), skip = c.data.onBadImage == .skip
        let trainLoader = DataLoader(samples: data.train.samples, transform: t.train, batchSize: c.data.batchSize, sampler: sampler,
                                     dropLast: c.data.dropLast, seed: seed, skipBadImages: skip)
        let valLoader = DataLoader(samples: data.val.samples, transform: t.eval, batchSize: c.data.batchSize, sampler: .sequential,
                                   dropLast: false, seed: seed, skipBadImages: skip)
        let limits = try ImageLimits(maxPixels: c.data.maxImagePixels, maxFileBytes: c.data.maxImageBytes,
                                     maxJPEGScans: c.data.maxJPEGScans)
        for loader in [trainLoader, valLoader] {
            loader.workers = c.data.workers
            loader.imageLimits = limits
        }
        try t.train.validate()
        try t.eval.validate()
        try sampler.validate(count: data.train.count)
        guard trainLoader.batchCount > 0 else {
            throw ConfigError(file: c.source, key: "data.batch_size", message: "\(c.data.batchSize) is larger than the \(data.train.count) training images (with drop_last)")
        }
        return (trainLoader, valLoader)
    }

    /// The trainer with its EMA copy and MixUp/CutMix mixer.
    static func makeTrainer(_ c: TrainConfig, model: ImageClassifier, teacher: ImageClassifier?,
                            loaders: (train: DataLoader, val: DataLoader), classes: [String], numClasses: Int) throws -> Trainer {
        var emaModel: ImageClassifier? = nil
        if c.ema?.evaluate == true { emaModel = try ModelRegistry.create(c.model.name, numClasses: numClasses) }
        // Seeded from the run seed on a stream of its own, so mixing does not shift the loader's draws.
        var mixSeed = RandomGenerator(seed: UInt64(c.seed)).derived(stream: 0x4D49_5855)
        let mixer = c.mixup.enabled ? MixupMixer(config: c.mixup, numClasses: numClasses, seed: mixSeed.next()) : nil
        return try Trainer(config: c, model: model, train: LoaderBatchSource(loader: loaders.train, classes: classes),
                           val: LoaderBatchSource(loader: loaders.val, classes: classes), teacher: teacher, mixer: mixer,
                           emaModel: emaModel)
    }

    /// Output folders, checked writable now rather than after the first epoch. A write killed
    /// before its rename (kill -9, power loss) leaves a temporary file behind; the next run of the
    /// experiment removes what a dead writer left there.
    static func prepareOutputFolders(run: URL, checkpoints: URL, source: String) throws {
        for dir in [run, checkpoints] {
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw ConfigError(file: source, key: dir == run ? "output" : "checkpoints", message: "cannot create \(dir.path): \(error.localizedDescription)")
            }
            guard FileManager.default.isWritableFile(atPath: dir.path) else {
                throw ConfigError(file: source, key: "output", message: "\(dir.path) is not writable")
            }
        }
        // A write killed before its rename (kill -9, power loss) leaves a temporary file behind;
        // the next run of the experiment removes what a dead writer left there.
        // Earlier runs' folders, and the experiment folder itself (from before run folders).
        let experiment = checkpoints.deletingLastPathComponent()
        let runs = ((try? FileManager.default.contentsOfDirectory(atPath: experiment.path)) ?? []).sorted()
            .filter { !$0.hasPrefix(".") && $0 != RunLayout.latestName }.map { experiment.appendingPathComponent($0) }
        for stale in ([experiment] + runs).flatMap({ removeStaleTemporaryFiles(in: $0) }) {
            TrainLog.logger.notice("removed \(stale.path), left by an interrupted checkpoint write")
        }
    }

    /// Each prefix must name at least one parameter (`Module.matches`: the name itself or a dotted
    /// prefix of it); the error lists the nearest module paths.
    static func checkPrefixes(_ prefixes: [String], key: String, names: [String], model: String, source: String) throws {
        for p in prefixes where !names.contains(where: { Module.matches($0, prefixes: [p]) }) {
            var paths = Set<String>()
            for n in names {
                let parts = n.split(separator: ".")
                for i in 1...parts.count { paths.insert(parts[..<i].joined(separator: ".")) }
            }
            let target = p.lowercased()
            let scored: [(path: String, distance: Int)] = paths.map { ($0, editDistance(target, $0.lowercased())) }
            let ranked = scored.sorted { a, b in a.distance != b.distance ? a.distance < b.distance : a.path < b.path }
            let close = ranked.prefix(3).map(\.path)
            var modules: [String] = []
            for n in names {
                let top = String(n.prefix { $0 != "." })
                if !modules.contains(top) { modules.append(top) }
            }
            throw ConfigError(file: source, key: key, message: "'\(p)' matches no parameter of \(model); closest: \(close.joined(separator: ", ")); top-level modules: \(modules.joined(separator: ", "))")
        }
    }

    /// One forward of the teacher at its input size before the first step: its output must be
    /// one score per student class.
    static func checkTeacherOutput(_ t: ImageClassifier, imageSize: Int, numClasses: Int, source: String) throws {
        // Eval mode, so the probe leaves BatchNorm's running statistics alone.
        t.eval()
        let out = noGrad { t(Tensor.zeros([1, 3, imageSize, imageSize])) }
        guard out.shape == [1, numClasses] else {
            throw ConfigError(file: source, key: "distill.teacher", message: "at \(imageSize) px the teacher outputs shape \(out.shape), the student needs [N, \(numClasses)]")
        }
    }
}
