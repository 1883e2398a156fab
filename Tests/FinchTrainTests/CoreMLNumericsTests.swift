import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchTestSupport
@testable import FinchTrain

/// Finch's Core ML packages run through the NumPy MIL interpreter (Tests/Tools/mil_interpreter.py,
/// which MILInterpreterTests first proves against coremltools' own conversions of timm models) and
/// compared with Finch's forward pass: float32 logits within 1e-4 (and 1e-5 of their scale), float16
/// within 1e-2 of their scale with the same top-1, and
/// the image classifier's preprocessing and probabilities. MIL_INTERPRETER overrides the
/// interpreter's path (for a checkout where it lives elsewhere).
final class CoreMLNumericsTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-coreml-num-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func raw(_ values: [Float], _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try values.map { $0.bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: url)
        return url.path
    }

    func testZooPackagesAgreeWithFinchThroughTheMILInterpreter() throws {
        guard try PythonTools.available(["coremltools", "numpy"]) else { return }
        let interpreter = ProcessInfo.processInfo.environment["MIL_INTERPRETER"]
            ?? coreMLTools.appendingPathComponent("mil_interpreter.py").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: interpreter), "\(interpreter) is missing")
        var jobs: [[String: Any]] = []
        var expectations: [String: (model: String, variant: String)] = [:]
        var sizes: [String: [String: Int]] = [:]
        for name in ModelRegistry.names {
            let res = name.hasPrefix("mobilevit") ? 72 : 48
            let m = try coreMLDeployable(name, resolution: res)
            let trace = try ModelTrace(recording: m.model, inputShape: [3, res, res], numClasses: m.model.numClasses)
            let x = ProceduralWeights.input(batch: 1, resolution: res)
            let logits = noGrad { m.model(x) }
            let xPath = try raw(x.scalars, "\(name).x"), logitsPath = try raw(logits.scalars, "\(name).logits")
            var variants = [("fp32", CoreMLExportOptions(precision: .float32, input: .tensor)),
                            ("fp16", CoreMLExportOptions(precision: .float16, input: .tensor))]
            // Folding on one model per family keeps the test short.
            if ["resnet18", "mobilenetv3_small_100", "tf_efficientnet_lite0", "mobilevit_xxs"].contains(name) {
                variants.append(("fp32-fold", CoreMLExportOptions(precision: .float32, input: .tensor, foldBatchNorm: true)))
            }
            for (variant, options) in variants {
                let url = dir.appendingPathComponent("\(name)-\(variant).mlpackage")
                let package = try ModelExport.coreMLExporter(for: m, options: options).graph(from: trace)
                try package.write(to: url)
                sizes[name, default: [:]][variant] = package.weights.count + (try package.specification().count)
                jobs.append(["package": url.path, "input": "input", "x": xPath, "shape": x.shape, "expected": logitsPath])
                expectations[url.path] = (name, variant)
            }
        }
        // The app-ready form: 0–255 pixels in, the program normalises them, softmax and labels out.
        for (name, precision) in [("mobilenetv3_small_100", CoreMLExporter.Precision.float32), ("resnet18", .float16)] {
            let m = try coreMLDeployable(name, resolution: 40)
            let pixels: [Float] = (0..<(3 * 40 * 40)).map { (i: Int) -> Float in Float((i * 7919 + 13) % 256) }
            var normalized = pixels
            for c in 0..<3 { for i in 0..<1600 { let p: Float = pixels[c * 1600 + i] / 255
                normalized[c * 1600 + i] = (p - m.mean[c]) / m.std[c] } }
            let probs = noGrad { m.model(Tensor(normalized, shape: [1, 3, 40, 40])).softmax(axis: -1) }
            let url = dir.appendingPathComponent("\(name)-image-\(precision.rawValue).mlpackage")
            try ModelExport.exportCoreML(m, to: url, options: CoreMLExportOptions(precision: precision, input: .image))
            jobs.append(["package": url.path, "input": "image", "x": try raw(pixels, "\(name).pixels"), "shape": [1, 3, 40, 40],
                         "expected": try raw(probs.scalars, "\(name).probs"), "classes": m.classes])
            expectations[url.path] = (name, "image-\(precision.rawValue)")
        }
        let job = dir.appendingPathComponent("job.json"), report = dir.appendingPathComponent("report.json")
        try JSONSerialization.data(withJSONObject: jobs).write(to: job)
        let run = PythonTools.run([coreMLTools.appendingPathComponent("coreml_numerics.py").path, job.path, report.path, interpreter])
        XCTAssertEqual(run.status, 0, run.output)
        guard run.status == 0 else { return }
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: [String: Any]]
        var table: [String: [String: String]] = [:]
        for (path, (name, variant)) in expectations {
            guard let e = doc[path], let d = e["max_abs"] as? Double, let scale = e["scale"] as? Double,
                  let same = e["top1_same"] as? Bool else { XCTFail("\(name) \(variant): no result"); continue }
            table[name, default: [:]][variant] = String(format: "%.1e", d) + (variant == "fp32" ? String(format: " (logits up to %.2g)", scale) : "")
            switch variant {
            case "fp32", "fp32-fold":
                // The procedural weights give logits of 0.1–3: besides the absolute 1e-4, a bound
                // relative to them (measured: at most 5e-7 of the scale).
                XCTAssertLessThanOrEqual(d, 1e-4, "\(name) \(variant): logits, interpreter vs Finch")
                XCTAssertLessThanOrEqual(d, 1e-5 * scale, "\(name) \(variant): logits relative to their scale \(scale)")
                XCTAssertTrue(same, "\(name) \(variant): top-1")
            case "fp16":
                // float16 compute rounds every op to 11 significant bits: the logits move by up to
                // ~2e-3 of their scale (measured); the class must not.
                XCTAssertLessThanOrEqual(d, 1e-2 * scale, "\(name) float16: logits, interpreter vs Finch (scale \(scale))")
                XCTAssertTrue(same, "\(name) float16: top-1 differs from Finch's")
            default:
                XCTAssertLessThanOrEqual(d, variant.hasSuffix("float32") ? 1e-5 : 2e-3, "\(name) \(variant): probabilities")
                XCTAssertTrue(same && (e["label_is_top1"] as? Bool ?? false), "\(name) \(variant): classLabel \(e["label"] ?? "")")
            }
        }
        for name in table.keys.sorted() {
            print("coreml numerics \(name): " + table[name]!.sorted { $0.key < $1.key }.map { "\($0.key) max|Δ|=\($0.value)" }.joined(separator: " ")
                  + " | package bytes fp32 \(sizes[name]?["fp32"] ?? 0), fp16 \(sizes[name]?["fp16"] ?? 0)")
        }
    }
}
