import Foundation
import FinchTensor
import FinchNN
import FinchData
import FinchOptim
import FinchIO
import FinchTrain

@main
struct FromSwift {
    /// from-swift DATA_FOLDER OUTPUT_FOLDER IMAGE: fine-tune on an ImageFolder, save, reload, predict.
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count == 3 else {
            FileHandle.standardError.write(Data("usage: from-swift DATA_FOLDER OUTPUT_FOLDER IMAGE\n".utf8))
            exit(2)
        }
        let data = URL(fileURLWithPath: arguments[0]), output = URL(fileURLWithPath: arguments[1])
        print("Finch \(FinchVersion.string)")
        let config = try makeConfig(data: data, output: output)
        let checkpoint = try train(config, to: output.appendingPathComponent("from-swift.h5"))
        try predict(checkpoint, image: URL(fileURLWithPath: arguments[2]))
    }

    /// 1. A config: the YAML `train --config` reads, every key checked as it is read. The
    ///    `overrides` are `train --set`'s, timm's names included.
    static func makeConfig(data: URL, output: URL) throws -> TrainConfig {
        let yaml = """
        experiment: from-swift
        data: {root: \(data.path), image_size: 32, batch_size: 2, workers: 0}
        model: {name: mobilenetv3_small_100}
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {epochs: 1, warmup_epochs: 0}
        output: \(output.appendingPathComponent("runs").path)
        checkpoints: \(output.appendingPathComponent("checkpoints").path)
        """
        return try TrainConfig.parse(yaml, source: "from-swift", overrides: ["seed=7", "smoothing=0.1"])
    }

    /// 2. `TrainingSetup` builds and checks everything (data, model, optimizer, output folders)
    ///    before the first step; its `Trainer` runs the epochs and writes checkpoints.
    static func train(_ config: TrainConfig, to checkpoint: URL) throws -> URL {
        let setup = try TrainingSetup(config: config)
        let progress = Progress()
        setup.trainer.callbacks.append(progress)
        let records = try setup.trainer.fit()
        print("trained \(records.count) epoch(s) of \(setup.trainer.model.modelName) on \(setup.classes)")
        try setup.trainer.writeCheckpoint(to: checkpoint)
        return checkpoint
    }

    /// 3. A callback sees every optimizer step and every finished epoch.
    final class Progress: TrainerCallback {
        var steps = 0
        var lastLoss: Float = .nan

        func trainerDidFinishStep(_ trainer: Trainer, loss: Float) {
            steps += 1
            lastLoss = loss
        }

        func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
            let top1 = record.values["val/top1"] ?? .nan
            print("epoch \(record.epoch + 1): \(steps) steps, last loss \(lastLoss), val/top1 \(top1)")
        }
    }

    /// 4. A checkpoint loads as a `DeployableModel` (weights, classes, preprocessing), which
    ///    predicts on image files.
    static func predict(_ checkpoint: URL, image: URL) throws {
        let model = try ModelExport.load(checkpoint)
        for prediction in try ModelInference.predict(model, images: [image], topK: 1) {
            guard let best = prediction.top.first else { continue }
            print("\(prediction.file): \(best.label) (\(String(format: "%.3f", best.probability)))")
        }
    }
}
