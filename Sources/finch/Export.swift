import ArgumentParser
import Foundation
import FinchTensor
import FinchData
import FinchIO
import FinchTrain

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a checkpoint or weights file as safetensors, HDF5 or ONNX for an inference engine.")

    @Option(help: "Finch checkpoint (.h5 from train) or weights file (.safetensors / .h5 with /model).")
    var checkpoint: String

    @Option(help: "safetensors | hdf5 | onnx")
    var format: String

    @Option(help: "Output file (written atomically).")
    var output: String

    @Option(help: "Model name, for weights files that do not record it.")
    var model: String?

    @Option(help: "Class count, for weights files that do not record it.")
    var numClasses: Int?

    @Flag(help: "ONNX: fold BatchNorm into the preceding convolutions.")
    var foldBn = false

    @Flag(help: "Store float16 weights (safetensors, ONNX); with --data, prints the accuracy difference.")
    var half = false

    @Flag(help: "Export the checkpoint's EMA weights.")
    var ema = false

    @Option(help: "Validation data (ImageFolder root) to measure what --half or --fold-bn changes.")
    var data: String?

    func validate() throws {
        if let numClasses { try checkOption("num-classes", numClasses, OptionRange.classes) }
    }

    mutating func run() throws {
        guard let fmt = ModelExport.Format(rawValue: format.lowercased()) else { throw ModelExportError.unknownFormat(format) }
        if foldBn && fmt != .onnx { throw ValidationError("--fold-bn applies to --format onnx only") }
        if half && fmt == .hdf5 { throw ValidationError("--half applies to safetensors and onnx") }
        let m = try ModelExport.load(URL(fileURLWithPath: checkpoint), modelName: model, numClasses: numClasses, ema: ema)
        let out = URL(fileURLWithPath: output)
        try ModelExport.export(m, format: fmt, to: out, foldBatchNorm: foldBn, half: half)
        let size = (try? FileManager.default.attributesOfItem(atPath: out.path)[.size] as? Int) ?? 0
        print("export: \(m.modelName) (\(m.model.numClasses) classes, \(m.model.parameterCount) parameters) → \(output) " +
              "[\(fmt.rawValue)\(foldBn ? ", BatchNorm folded" : "")\(half ? ", float16" : "")] \(size) bytes")
        if foldBn {
            print("fold-bn: the logit difference folding makes is measured by ONNX Runtime in the test suite " +
                  "(ModelExportTests); run the exported file beside the unfolded one to see it for this model")
        }
        if half, let data {
            let full = try ModelInference.evaluate(m, data: URL(fileURLWithPath: data))
            let rounded = try ModelExport.roundedToHalf(m)
            let h = try ModelInference.evaluate(rounded, data: URL(fileURLWithPath: data))
            print("half: val top-1 \(String(format: "%.4f", full.top1)) (float32) vs \(String(format: "%.4f", h.top1)) (float16 weights), " +
                  "Δ = \(String(format: "%+.4f", h.top1 - full.top1)) over \(full.count) images")
        }
    }
}
