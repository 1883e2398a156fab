import ArgumentParser
import Foundation
import FinchTensor
import FinchTrain

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with training configs.",
        subcommands: [FromTimm.self])
}

/// A timm run's `args.yaml` as a Finch config, with the options Finch has no key for listed.
struct FromTimm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-timm",
        abstract: "Convert a timm train.py args.yaml (flat keys) to a Finch config, listing the options with no equivalent.",
        discussion: "Without --output the config is printed. `train --set` also takes timm's names: --set opt=adamw --set smoothing=0.1.")

    @Argument(help: "The args.yaml timm wrote beside its checkpoints.") var file: String
    @Option(help: "Write the Finch config here instead of printing it.") var output: String?

    mutating func run() throws {
        try InputFile.requireRegular(file, what: "timm args.yaml")
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("\(file): cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(file): is not UTF-8 text") }
        let conversion: TimmArgsConversion
        do { conversion = try TimmArgsConversion.convert(text, source: file) } catch let e as ConfigError {
            throw ValidationError(e.description)
        }
        guard let output else {
            print(conversion.yaml, terminator: "")
            return
        }
        do { try Data(conversion.yaml.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
            throw ValidationError("\(output): cannot write the config: \(error.localizedDescription)")
        }
        print("wrote \(output) from \(file)")
        for n in conversion.notes { print("note: \(n)") }
        if !conversion.skipped.isEmpty {
            print("timm options left out:")
            for s in conversion.skipped { print("  \(s.key): \(s.value)  (\(s.reason))") }
        }
        if !conversion.unknown.isEmpty { print("not timm train.py options (left out): \(conversion.unknown.joined(separator: ", "))") }
        if let problem = conversion.loadProblem { print("to train with it, fix first: \(problem)") }
    }
}
