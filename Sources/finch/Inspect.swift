import ArgumentParser
import Foundation
import FinchIO
import FinchTensor

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors, shapes, dtypes, parameter count and metadata of a .safetensors, .h5 or .onnx file (for a checkpoint also epoch, metrics and config).")

    @Argument(help: "The file to inspect.") var file: String
    @Option(help: "How many tensors to list.") var max: Int = 40

    func validate() throws { try checkOption("max", max, 1...1_000_000) }

    mutating func run() throws {
        // A directory, FIFO or device is refused here without blocking, before any reader opens it.
        try InputFile.requireRegular(file, what: "file to inspect")
        print(try FileInspection.describe(URL(fileURLWithPath: file), maxTensors: max))
    }
}
