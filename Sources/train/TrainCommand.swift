import ArgumentParser
import Foundation
import FinchTensor
import FinchTrain

@main
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a model from a YAML config (see Experiments/flowers.yaml).",
        discussion: "Run outputs go to Experiments/runs/<experiment>/<timestamp>/, checkpoints to Checkpoints/<experiment>/<timestamp>/ (Checkpoints/<experiment>/latest: the newest). Ctrl-C finishes the step, writes last.h5 and prints the resume command.",
        version: FinchVersion.string)

    @Option(help: "The experiment config (YAML).") var config: String
    @Option(name: .customLong("set"), help: "Override a config key, e.g. --set optimizer.lr=1e-4 (repeatable).") var overrides: [String] = []
    @Option(help: "Continue from a checkpoint written by this config: a file, a run's checkpoint folder (its last.h5) or Checkpoints/<experiment> (latest/last.h5).") var resume: String?

    /// The library's records and progress bar, printed as they always were, before anything runs.
    static func main() {
        ConsoleOutput.bootstrap()
        main(nil)
    }

    mutating func run() throws {
        // Under mpirun (several ranks) MPI starts here, on the main thread; a plain run never starts it.
        let comm = Distributed.trainingCommunicator
        do {
            try train(comm)
        } catch let e as ConfigError {
            guard let comm else { throw ValidationError(e.description) }
            Self.abort(comm, e.description)
        } catch {
            guard let comm else { throw error }
            Self.abort(comm, "\(error)")
        }
    }

    /// A rank that cannot go on ends every rank (the others would wait for it forever).
    static func abort(_ comm: Communicator, _ message: String) -> Never {
        FileHandle.standardError.write(Data("train: error on rank \(comm.rank) of \(comm.size): \(message)\n".utf8))
        comm.abort(code: 1)
    }

    func train(_ comm: Communicator?) throws {
        do {
            let cfg = try TrainConfig.load(URL(fileURLWithPath: config), overrides: overrides)
            let setup = try TrainingSetup(config: cfg, resume: resume.map { URL(fileURLWithPath: $0) }, communicator: comm)
            let trainer = setup.trainer
            // Rank 0 alone prints (and writes, TrainingSetup).
            func print(_ line: String) { if comm?.isRoot ?? true { Swift.print(line) } }
            if let resume, let file = setup.resumedFrom {
                let named = file.path == URL(fileURLWithPath: resume).path ? resume : "\(resume) (\(file.resolvingSymlinksInPath().path))"
                print("resumed from \(named) at epoch \(trainer.epoch + 1), step \(trainer.globalStep)")
            }
            installStopHandlers()
            if let comm { print("data-parallel: \(comm.size) ranks, global batch \(setup.config.data.batchSize), \(Distributed.threads) threads per rank") }
            print("\(cfg.experiment): \(cfg.model.name), \(setup.classes.count) classes, \(trainer.model.trainableParameterCount) of \(trainer.model.parameterCount) parameters trained (\(cfg.finetune.mode)), \(trainer.totalEpochs) epochs")
            // Input sizes said once, and what a teacher at its own resolution sees (distill.teacher.view).
            let size = cfg.data.imageSize ?? trainer.model.pretrainedConfig.inputSize
            if let d = cfg.distill {
                let t = d.teacher.imageSize ?? size
                let view = d.teacher.view == .own ? "each photo rendered again at its size with the student's augmentation"
                    : "the student's batch resized bilinearly"
                print("input \(size)×\(size) px; teacher \(d.teacher.name) at \(t)×\(t) px" + (t == size ? "" : " (\(view))"))
            } else {
                print("input \(size)×\(size) px")
            }
            print("run folder \(setup.runDirectory.path)")
            try trainer.fit()
            let last = setup.checkpointDirectory.appendingPathComponent("last.h5")
            if Trainer.stopRequest.load(ordering: .relaxed) {
                if comm?.isRoot ?? true {
                    try trainer.writeCheckpoint(to: last)
                    // The checkpoint is written; a link that cannot move is said, not fatal.
                    do { try RunLayout.markLatest(setup.checkpointDirectory) } catch { FileHandle.standardError.write(Data("warning: \(error)\n".utf8)) }
                }
                print("stopped; resume with: train --config \(config)\(overrides.map { " --set \($0)" }.joined()) --resume \(last.path)")
                return
            }
            let best = trainer.bestMetric.isFinite ? String(format: "%.4f", trainer.bestMetric) : "n/a"
            print("done: best \(cfg.checkpoint.monitor) \(best) at epoch \(trainer.bestEpoch + 1); checkpoints in \(setup.checkpointDirectory.path)")
        } catch let e as ConfigError {
            throw ValidationError(e.description)
        }
    }
}

/// SIGINT/SIGTERM ask the trainer to stop after the current step (a second signal kills).
func installStopHandlers() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { s in
            if Trainer.stopRequest.load(ordering: .relaxed) { signal(s, SIG_DFL); raise(s) }
            Trainer.stopRequest.store(true, ordering: .relaxed)
        }
    }
}
