import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchTestSupport
@testable import FinchTrain

/// Every zoo model through all three export formats, checked by the engines' own libraries
/// (ONNX Runtime and onnx.checker, safetensors, h5py) via Tests/Fixtures/tools/export_check.py.
final class ModelExportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Procedural weights (running statistics far from 0/1, so folding BatchNorm matters) and
    /// the preprocessing a fine-tuned 7-class model would carry. 72 px makes MobileViT resize
    /// a 9×9 map to its patch grid, so the ONNX Resize path is exercised too.
    func deployable(_ name: String) throws -> DeployableModel {
        let model = try ModelRegistry.create(name, numClasses: 7)
        try ProceduralWeights.fill(model)
        model.eval()
        return DeployableModel(model: model, classes: ["a", "b", "c", "d", "e", "f", "g"], resolution: 72, cropPct: 0.9,
                               interpolation: "bicubic", mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], epoch: 3)
    }

    /// XOR and wrapping sum of the 32-bit words (16-bit for float16), as export_check.py computes them.
    func fingerprint(_ words: [UInt64]) -> (xor: UInt64, sum: UInt64) {
        words.reduce((UInt64(0), UInt64(0))) { ($0.0 ^ $1, $0.1 &+ $1) }
    }

    func testEveryZooModelRoundTripsThroughONNXRuntimeSafetensorsAndH5py() throws {
        guard try PythonTools.available(["onnxruntime", "onnx", "safetensors", "h5py", "numpy"]) else { return }
        var onnxJobs: [[String: String]] = [], stFiles: [String] = [], h5Files: [String] = []
        var expected: [String: Tensor] = [:]
        var models: [String: DeployableModel] = [:]
        let x = ProceduralWeights.input(batch: 2, resolution: 72)
        let input = dir.appendingPathComponent("input.safetensors")
        try writeSafeTensors([("input", .float32(x))], to: input)
        for name in ModelRegistry.names {
            let m = try deployable(name)
            models[name] = m
            expected[name] = noGrad { m.model(x) }
            for (variant, fold, half) in [("plain", false, false), ("fold", true, false), ("half", false, true)] {
                let f = dir.appendingPathComponent("\(name)-\(variant).onnx")
                try ModelExport.export(m, format: .onnx, to: f, foldBatchNorm: fold, half: half)
                onnxJobs.append(["model": f.path, "input": input.path, "output": dir.appendingPathComponent("\(name)-\(variant).out.safetensors").path])
            }
            let st = dir.appendingPathComponent("\(name).safetensors"), h5 = dir.appendingPathComponent("\(name).h5")
            try ModelExport.export(m, format: .safetensors, to: st)
            try ModelExport.export(m, format: .hdf5, to: h5)
            stFiles.append(st.path)
            h5Files.append(h5.path)
        }
        let report = dir.appendingPathComponent("report.json"), job = dir.appendingPathComponent("job.json")
        try JSONSerialization.data(withJSONObject: ["onnx": onnxJobs, "safetensors": stFiles, "hdf5": h5Files, "report": report.path])
            .write(to: job)
        let run = PythonTools.run([PythonTools.tools.appendingPathComponent("export_check.py").path, job.path])
        XCTAssertEqual(run.status, 0, run.output)
        guard run.status == 0 else { return }
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]

        var lines: [String] = []
        for name in ModelRegistry.names {
            let want = expected[name]!
            var row = "\(name):"
            for variant in ["plain", "fold", "half"] {
                let out = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("\(name)-\(variant).out.safetensors")).tensor("logits")
                XCTAssertEqual(out.shape, want.shape, "\(name) \(variant)")
                let d = zip(out.scalars, want.scalars).map { abs($0 - $1) }.max() ?? .infinity
                let scale = want.scalars.map(abs).max() ?? 1
                row += " \(variant) max|Δ|=\(String(format: "%.2e", d))"
                // float16 weights carry 2^-11 relative rounding each: bounded relative to the logits' scale.
                let bound: Float = variant == "half" ? 2e-2 * max(1, scale) : 1e-4
                XCTAssertLessThanOrEqual(d, bound, "\(name) \(variant): ONNX Runtime vs Finch")
                if variant != "half" { XCTAssertEqual(out.argmax(axis: 1), want.argmax(axis: 1), "\(name) \(variant): top-1") }
            }
            lines.append(row)

            // safetensors and HDF5: every tensor bit for bit, plus the metadata.
            let m = models[name]!
            for (kind, file) in [("safetensors", dir.appendingPathComponent("\(name).safetensors").path),
                                 ("hdf5", dir.appendingPathComponent("\(name).h5").path)] {
                let entry = (doc[kind] as! [String: Any])[file] as! [String: Any]
                let tensors = entry["tensors"] as! [String: [String: Any]]
                let meta = entry["metadata"] as! [String: String]
                XCTAssertEqual(meta["model"], name)
                XCTAssertEqual(meta["num_classes"], "7")
                XCTAssertEqual(meta["classes"], #"["a","b","c","d","e","f","g"]"#)
                XCTAssertEqual(meta["resolution"], "72")
                XCTAssertNotNil(meta["mean"]); XCTAssertNotNil(meta["std"]); XCTAssertNotNil(meta["crop_pct"])
                let sd = m.model.stateDict()
                XCTAssertEqual(Set(tensors.keys), Set(sd.map(\.name)), "\(name) \(kind): tensor names")
                for (tname, value) in sd {
                    guard let t = tensors[tname] else { continue }
                    let words: [UInt64]
                    switch value {
                    case .float(let v):
                        words = v.scalars.map { UInt64($0.bitPattern) }
                        XCTAssertEqual(t["dtype"] as? String, "float32", "\(name) \(kind) \(tname)")
                    case .int64(let v, _):
                        words = v.flatMap { [UInt64(UInt64(bitPattern: $0) & 0xFFFF_FFFF), UInt64(bitPattern: $0) >> 32] }
                        XCTAssertEqual(t["dtype"] as? String, "int64", "\(name) \(kind) \(tname)")
                    }
                    let f = fingerprint(words)
                    XCTAssertEqual(t["shape"] as? [Int], value.shape, "\(name) \(kind) \(tname)")
                    XCTAssertEqual((t["xor"] as! NSNumber).uint64Value, f.xor, "\(name) \(kind) \(tname): bits")
                    XCTAssertEqual((t["wsum"] as! NSNumber).uint64Value, f.sum, "\(name) \(kind) \(tname): bits")
                }
            }
        }
        let onnxReport = doc["onnx"] as! [[String: Any]]
        XCTAssertEqual(onnxReport.count, ModelRegistry.names.count * 3)
        for r in onnxReport {
            XCTAssertGreaterThanOrEqual(r["opset"] as! Int, 13)
            let meta = r["metadata"] as! [String: String]
            XCTAssertEqual(meta["classes"], #"["a","b","c","d","e","f","g"]"#)
            let inputs = r["inputs"] as! [[Any]]
            XCTAssertEqual(inputs.first?.first as? String, "input")
            XCTAssertEqual((inputs.first?[1] as? [Any])?.count, 4)
            XCTAssertTrue((inputs.first?[1] as? [Any])?.first is String, "dynamic batch dimension")
        }
        print(lines.joined(separator: "\n"))
    }

    func testLoadsItsOwnExportsAndRejectsOtherArchitectures() throws {
        let m = try deployable("mobilenetv3_small_100")
        let st = dir.appendingPathComponent("m.safetensors")
        try ModelExport.export(m, format: .safetensors, to: st)
        let back = try ModelExport.load(st)
        XCTAssertEqual(back.modelName, "mobilenetv3_small_100")
        XCTAssertEqual(back.classes, m.classes)
        XCTAssertEqual(back.resolution, 72)
        XCTAssertEqual(back.mean, m.mean)
        let x = ProceduralWeights.input(batch: 1, resolution: 72)
        XCTAssertEqual(noGrad { back.model(x) }.scalars, noGrad { m.model(x) }.scalars)

        XCTAssertThrowsError(try ModelExport.load(st, modelName: "resnet18")) { e in
            let s = "\(e)"
            // The file records its model, so the clash is named before any weight is tried.
            XCTAssertTrue(s.contains("m.safetensors: the model is mobilenetv3_small_100 in the file but --model says resnet18"), s)
        }
        XCTAssertThrowsError(try ModelExport.export(m, format: .onnx, to: URL(fileURLWithPath: "/nonexistent-dir/m.onnx"))) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-dir"), "\(e)")
        }
        XCTAssertNil(ModelExport.Format(rawValue: "tflite"))
        XCTAssertTrue("\(ModelExportError.unknownFormat("tflite"))".contains("safetensors, hdf5, onnx"))
    }

    /// A failure while writing leaves neither the output nor a temporary file behind.
    func testFailedExportLeavesNoFile() throws {
        let m = try deployable("mobilenetv3_small_100")
        let out = dir.appendingPathComponent("m.h5")
        final class Boom: Error {}
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: out) { root in
            try root.write("model/x", tensor: Tensor(zeros: [4]))
            throw Boom()
        })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        // An unwritable folder: the export fails before writing anything.
        let locked = dir.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: locked.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: locked.path) }
        if getuid() != 0 {   // root writes anywhere; the permission check only means something for others
            XCTAssertThrowsError(try ModelExport.export(m, format: .safetensors, to: locked.appendingPathComponent("m.safetensors")))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: locked.path), [])
    }

    func testPredictAndEvaluateOnATinyImageFolder() throws {
        let m = try deployable("mobilenetv3_small_100")
        let images = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/images").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: images.path)
            .filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted().prefix(3).map { images.appendingPathComponent($0) }
        XCTAssertFalse(files.isEmpty)
        let p = try ModelInference.predict(m, images: files, topK: 3)
        XCTAssertEqual(p.count, files.count)
        for pred in p {
            XCTAssertEqual(pred.top.count, 3)
            XCTAssertTrue(pred.top[0].probability >= pred.top[1].probability && pred.top[1].probability >= pred.top[2].probability)
            XCTAssertTrue(pred.top.allSatisfy { (0...1).contains($0.probability) })
        }
        // An undecodable image is an error naming it.
        let bad = dir.appendingPathComponent("broken.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0x00, 0x01]).write(to: bad)
        XCTAssertThrowsError(try ModelInference.predict(m, images: [bad])) { e in XCTAssertTrue("\(e)".contains("broken.jpg"), "\(e)") }
    }
}
