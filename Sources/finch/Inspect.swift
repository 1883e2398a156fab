import ArgumentParser
import Foundation
import FinchIO

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors, shapes, dtypes, parameter count and metadata of a .safetensors, .h5 or .onnx file (for a checkpoint also epoch, metrics and config).")

    @Argument(help: "The file to inspect.") var file: String
    @Option(help: "How many tensors to list.") var max: Int = 40

    func validate() throws { try checkOption("max", max, 1...1_000_000) }

    mutating func run() throws {
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        print(try FileInspection.describe(URL(fileURLWithPath: file), maxTensors: max))
    }
}
