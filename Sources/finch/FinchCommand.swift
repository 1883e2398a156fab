import ArgumentParser
import FinchTensor
import FinchTrain

@main
struct Finch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finch",
        abstract: "Fine-tune and distil small vision models on the CPU.",
        version: FinchVersion.string,
        subcommands: [Import.self, Export.self, Evaluate.self, NearestClassMeanCommand.self, Predict.self, Inspect.self, Compare.self, Bench.self, Demo.self,
                      Models.self, ConfigCommand.self])

    /// The library's records (a checkpoint's unreadable config, a skipped image) printed as they
    /// always were, before any subcommand runs.
    static func main() {
        ConsoleOutput.bootstrap()
        main(nil)
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Release-mode benchmarks (build with -c release).",
        subcommands: [BenchModel.self, BenchData.self, BenchKernels.self, BenchDistributed.self], defaultSubcommand: BenchModel.self)
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Small self-contained demonstrations.",
        subcommands: [DemoSpiral.self])
}
