import ArgumentParser
import FinchTrain

/// The workload the bench commands share: which model, at what size, measured over how many steps.
/// Batch and threads stay with each command, since they mean different things with and without ranks.
struct BenchWorkload: ParsableArguments {
    @Option(help: "Model name from the zoo (timm's), e.g. mobilenetv3_small_100.")
    var model: String

    @Option(help: "Input resolution (square).")
    var resolution: Int = 128

    @Option(help: "Timed steps (the median is reported) after the warm-up.")
    var steps: Int = 10

    @Option(help: "Untimed steps first (thread pool start, page faults, allocator warm-up).")
    var warmup: Int = 2

    @Option(help: "Classes of the classifier head.")
    var numClasses: Int = 1000

    func validate() throws {
        try checkOption("resolution", resolution, 16...TrainConfig.Limits.maxImageSize)
        try checkOption("steps", steps, OptionRange.steps)
        try checkOption("warmup", warmup, 0...OptionRange.steps.upperBound)
        try checkOption("num-classes", numClasses, OptionRange.classes)
    }
}
