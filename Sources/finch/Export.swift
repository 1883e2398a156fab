import ArgumentParser
import Foundation
import FinchTensor
import FinchData
import FinchIO
import FinchTrain

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a checkpoint or weights file as safetensors, HDF5, ONNX or a Core ML package for an inference engine.")

    @Option(help: "Finch checkpoint (.h5 from train) or weights file (.safetensors / .h5 with /model).")
    var checkpoint: String

    @Option(help: "safetensors | hdf5 | onnx | coreml")
    var format: String

    @Option(help: "Output file (written atomically); for coreml a .mlpackage folder.")
    var output: String

    @Option(help: "Model name, for weights files that do not record it.")
    var model: String?

    @Option(help: "Class count, for weights files that do not record it.")
    var numClasses: Int?

    @Flag(help: "ONNX, Core ML: fold BatchNorm into the preceding convolutions.")
    var foldBn = false

    @Flag(help: "Store float16 weights (safetensors, ONNX); with --data, prints the accuracy difference.")
    var half = false

    @Option(help: "Core ML: float16 (weights and compute; the default, as coremltools picks for ML Programs) | float32.")
    var precision: String?

    @Option(help: "Core ML: image (an RGB image input with the normalisation built in, classifier outputs; the default) | tensor (float32 [1,3,H,W] in, logits out).")
    var input: String?

    @Flag(help: "Export the checkpoint's EMA weights.")
    var ema = false

    @Option(help: "Validation data (ImageFolder root) to measure what --half, --precision float16 or --fold-bn changes.")
    var data: String?

    func validate() throws {
        if let numClasses { try checkOption("num-classes", numClasses, OptionRange.classes) }
    }

    mutating func run() throws {
        guard let fmt = ModelExport.Format(rawValue: format.lowercased()) else { throw ModelExportError.unknownFormat(format) }
        if foldBn && fmt != .onnx && fmt != .coreml { throw ValidationError("--fold-bn applies to --format onnx and coreml") }
        if half && (fmt == .hdf5 || fmt == .coreml) { throw ValidationError("--half applies to safetensors and onnx (Core ML: --precision float16)") }
        if (precision != nil || input != nil) && fmt != .coreml { throw ValidationError("--precision and --input apply to --format coreml only") }
        var coreML = CoreMLExportOptions(foldBatchNorm: foldBn, source: checkpoint)
        if let precision {
            guard let p = CoreMLExporter.Precision(rawValue: precision) else {
                throw ValidationError("--precision must be one of: \(CoreMLExporter.Precision.allCases.map(\.rawValue).joined(separator: ", ")); got '\(precision)'")
            }
            coreML.precision = p
        }
        if let input {
            guard let i = CoreMLExporter.Input(rawValue: input) else {
                throw ValidationError("--input must be one of: \(CoreMLExporter.Input.allCases.map(\.rawValue).joined(separator: ", ")); got '\(input)'")
            }
            coreML.input = i
        }
        let m = try ModelExport.load(URL(fileURLWithPath: checkpoint), modelName: model, numClasses: numClasses, ema: ema)
        let out = URL(fileURLWithPath: output)
        if fmt == .coreml {
            try ModelExport.exportCoreML(m, to: out, options: coreML)
            let weights = out.appendingPathComponent("Data/com.apple.CoreML/weights/weight.bin").path
            let size = (try? FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int) ?? 0
            print("export: \(m.modelName) (\(m.model.numClasses) classes, \(m.model.parameterCount) parameters) → \(output) " +
                  "[Core ML ML Program, \(coreML.precision.rawValue), \(coreML.input.rawValue) input\(foldBn ? ", BatchNorm folded" : "")] " +
                  "weights \(size) bytes")
            if coreML.precision == .float16, let data {
                // Finch has no float16 arithmetic: this measures the float16 weights (as --half does);
                // the float16 compute is checked against an MIL interpreter in CoreMLNumericsTests.
                let full = try ModelInference.evaluate(m, data: URL(fileURLWithPath: data))
                let h = try ModelInference.evaluate(try ModelExport.roundedToHalf(m), data: URL(fileURLWithPath: data))
                print("float16: val top-1 \(String(format: "%.4f", full.top1)) (float32) vs \(String(format: "%.4f", h.top1)) (float16 weights), " +
                      "Δ = \(String(format: "%+.4f", h.top1 - full.top1)) over \(full.count) images")
            }
            return
        }
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
