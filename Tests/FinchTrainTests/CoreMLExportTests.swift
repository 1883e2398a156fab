import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchTestSupport
@testable import FinchTrain

/// Tests/Tools, beside Tests/Fixtures/tools: the Core ML checks.
let coreMLTools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Tools").standardized

/// A tiny 5-class model of every zoo architecture with procedural weights, as a fine-tuned
/// checkpoint would carry it. 72 px makes MobileViT resize a 9×9 map to its patch grid.
func coreMLDeployable(_ name: String, resolution: Int = 72) throws -> DeployableModel {
    let model = try ModelRegistry.create(name, numClasses: 5)
    try ProceduralWeights.fill(model)
    model.eval()
    return DeployableModel(model: model, classes: ["daisy", "rose", "tulip", "iris", "lily"], resolution: resolution, cropPct: 0.9,
                           interpolation: "bicubic", mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], epoch: 3)
}

/// Every zoo model exported as a Core ML package, read back by coremltools itself
/// (Tests/Tools/coreml_check.py): MLModel loads it, the spec's inputs, outputs, labels and metadata
/// are Finch's, the MIL front end type- and shape-checks the program, and the blob reader returns
/// every weight bit for bit.
final class CoreMLExportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-coreml-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The job coreml_check.py reads for one package: Finch's weights in the package's precision
    /// concatenated in RAW, indexed by the program's constant names.
    func checkJob(_ m: DeployableModel, _ package: CoreMLPackage, at url: URL, options: CoreMLExportOptions) throws -> [String: Any] {
        var raw = Data(), index: [String: [Int]] = [:]
        let state = Dictionary(uniqueKeysWithValues: m.model.stateDict().compactMap { e -> (String, Tensor)? in
            if case .float(let t) = e.value { return (e.name, t) } else { return nil }
        })
        for (stateName, constName) in package.weightNames {
            guard let t = state[stateName] else {
                XCTAssertTrue(options.foldBatchNorm && stateName.hasSuffix(".folded"), "\(stateName): not a state-dict tensor")
                continue
            }
            let bytes = options.precision == .float16
                ? t.scalars.map { float16Bits($0).littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
                : t.scalars.map { $0.bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
            index[constName] = [raw.count, bytes.count]
            raw.append(bytes)
        }
        let rawURL = url.appendingPathExtension("raw")
        try raw.write(to: rawURL)
        var meta = m.metadata
        meta["finch_version"] = FinchVersion.string
        meta["source"] = options.source
        meta["precision"] = options.precision.rawValue
        return ["package": url.path, "input": options.input.rawValue, "precision": options.precision.rawValue,
                "resolution": m.resolution, "classes": m.classes, "metadata": meta, "weights": rawURL.path,
                "weight_index": index, "folded_ok": options.foldBatchNorm]
    }

    func testEveryZooModelExportsAndCoremltoolsReadsIt() throws {
        guard try PythonTools.available(["coremltools", "numpy"]) else { return }
        var jobs: [[String: Any]] = []
        let variants: [(String, CoreMLExportOptions)] = [
            ("image-fp16", CoreMLExportOptions(precision: .float16, input: .image, source: "ck.h5")),
            ("tensor-fp32", CoreMLExportOptions(precision: .float32, input: .tensor, source: "ck.h5")),
            ("image-fp32-fold", CoreMLExportOptions(precision: .float32, input: .image, foldBatchNorm: true, source: "ck.h5")),
        ]
        for name in ModelRegistry.names {
            let m = try coreMLDeployable(name)
            // One trace serves every variant; the first goes through the library's entry point.
            let trace = try ModelTrace(recording: m.model, inputShape: [3, m.resolution, m.resolution], numClasses: m.model.numClasses)
            for (k, (variant, options)) in variants.enumerated() {
                let url = dir.appendingPathComponent("\(name)-\(variant).mlpackage")
                let package: CoreMLPackage
                if k == 0 {
                    package = try ModelExport.exportCoreML(m, to: url, options: options)
                } else {
                    package = try ModelExport.coreMLExporter(for: m, options: options).graph(from: trace)
                    try package.write(to: url)
                }
                for part in ["Manifest.json", "Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin"] {
                    XCTAssertTrue(FileManager.default.fileExists(atPath: url.appendingPathComponent(part).path), "\(name) \(variant): \(part)")
                }
                XCTAssertEqual(package.weights.count % 64, 0)
                jobs.append(try checkJob(m, package, at: url, options: options))
            }
        }
        let started = Date()
        let job = dir.appendingPathComponent("job.json")
        try JSONSerialization.data(withJSONObject: jobs).write(to: job)
        let run = PythonTools.run([coreMLTools.appendingPathComponent("coreml_check.py").path, job.path])
        XCTAssertEqual(run.status, 0, run.output)
        print(run.output + "coreml_check.py: \(Int(Date().timeIntervalSince(started))) s")
        // Every line is a package that passed.
        XCTAssertEqual(run.output.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, jobs.count, run.output)
    }

    func testFoldingRemovesEveryBatchNormAfterAConvolution() throws {
        let m = try coreMLDeployable("resnet18", resolution: 32)
        let plain = try ModelExport.coreMLExporter(for: m, options: CoreMLExportOptions(precision: .float32))
            .export(m.model, inputShape: [3, 32, 32], numClasses: 5)
        let folded = try ModelExport.coreMLExporter(for: m, options: CoreMLExportOptions(precision: .float32, foldBatchNorm: true))
            .export(m.model, inputShape: [3, 32, 32], numClasses: 5)
        func count(_ p: CoreMLPackage, _ type: String) -> Int {
            p.operationTypes.filter { $0 == type }.count
        }
        XCTAssertEqual(count(plain, "batch_norm"), 20)
        XCTAssertEqual(count(folded, "batch_norm"), 0)
        XCTAssertEqual(count(plain, "conv"), count(folded, "conv"))
        XCTAssertTrue(folded.weightNames.keys.contains("conv1.weight.folded"))
        XCTAssertTrue(folded.weightNames.keys.contains("conv1.bias.folded"))
        XCTAssertNil(folded.weightNames["bn1.running_mean"])
    }

    func testUnwritableOutputLeavesNothing() throws {
        let m = try coreMLDeployable("resnet18", resolution: 32)
        XCTAssertThrowsError(try ModelExport.exportCoreML(m, to: URL(fileURLWithPath: "/nonexistent-dir/m.mlpackage"))) { e in
            XCTAssertTrue("\(e)".contains("does not exist"), "\(e)")
        }
        // A file where the package's folder must go: the write fails and no temporary folder stays.
        let blocked = dir.appendingPathComponent("blocked")
        try Data("x".utf8).write(to: blocked)
        XCTAssertThrowsError(try ModelExport.exportCoreML(m, to: blocked.appendingPathComponent("m.mlpackage")))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(left, ["blocked"])
        // Replacing an existing package leaves only the new one.
        let url = dir.appendingPathComponent("m.mlpackage")
        try ModelExport.exportCoreML(m, to: url, options: CoreMLExportOptions(precision: .float32))
        try ModelExport.exportCoreML(m, to: url, options: CoreMLExportOptions(precision: .float16))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["blocked", "m.mlpackage"])
    }

    func testAnOpCoreMLCannotExpressNamesItsModule() throws {
        final class DilatedPool: Module {
            let proj = Conv2d(3, 4, kernelSize: 1)
            override init() { super.init(); register("proj", proj) }
            override func callAsFunction(_ x: Tensor) -> Tensor {
                maxPool2d(proj(x), kernel: (3, 3), stride: (1, 1), padding: (2, 2), dilation: (2, 2)).mean(axes: [2, 3])
            }
        }
        let model = DilatedPool()
        XCTAssertThrowsError(try CoreMLExporter(input: .tensor).export(model, inputShape: [3, 8, 8], numClasses: 4)) { e in
            XCTAssertEqual("\(e)", "Core ML export: maxPool2d after module 'proj' cannot be expressed: MIL's max_pool has no dilation (got [2, 2])")
        }
    }
}
