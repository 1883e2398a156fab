import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO
import FinchTestSupport

/// Every traced op kind through the Core ML exporter: coremltools' MIL front end type- and
/// shape-checks the program (Tests/Tools/coreml_check.py), and the MIL interpreter
/// (Tests/Tools/mil_interpreter.py, or MIL_INTERPRETER) computes what Finch computed.
final class CoreMLOpCoverageTests: XCTestCase {
    static let tools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Tools").standardized

    func testEveryTracedOpKindLowersToMILAndAgreesWithTheInterpreter() throws {
        let model = EveryOpNet()
        try ProceduralWeights.fill(model)
        model.eval()
        let trace = try ModelTrace(recording: model, inputShape: [3, 16, 16], numClasses: 5)
        XCTAssertEqual(Set(trace.ops.map(\.kind.caseName)), ONNXOpCoverageTests.everyKind)
        let emitted = Set(try String(contentsOf: Self.tools.appendingPathComponent("coreml_ops.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init))

        guard try PythonTools.available(["coremltools", "numpy"]) else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-coreml-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func raw(_ v: [Float], _ name: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try v.map { $0.bitPattern.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: url)
            return url.path
        }
        let x = ProceduralWeights.input(batch: 1, resolution: 16)
        let expected = noGrad { model(x) }
        var checks: [[String: Any]] = [], runs: [[String: Any]] = []
        for precision in CoreMLExporter.Precision.allCases {
            let package = try CoreMLExporter(precision: precision, input: .tensor, shortDescription: "every op").graph(from: trace)
            // coreml_ops.txt is the list the interpreter's checker proves: it must hold every op written.
            XCTAssertTrue(Set(package.operationTypes).isSubset(of: emitted),
                          "ops missing from Tests/Tools/coreml_ops.txt: \(Set(package.operationTypes).subtracting(emitted).sorted())")
            let url = dir.appendingPathComponent("every-op-\(precision.rawValue).mlpackage")
            try package.write(to: url)
            var rawWeights: [Float] = [], index: [String: [Int]] = [:]
            for (name, value) in model.stateDict() {
                guard case .float(let t) = value, let const = package.weightNames[name] else { continue }
                let bytes = precision == .float16 ? t.count * 2 : t.count * 4
                index[const] = [rawWeights.count * 4, bytes]
                rawWeights += precision == .float16
                    ? stride(from: 0, to: t.count, by: 2).map { i in
                        let lo = UInt32(float16Bits(t.scalars[i])), hi = i + 1 < t.count ? UInt32(float16Bits(t.scalars[i + 1])) : 0
                        return Float(bitPattern: lo | hi << 16)
                    }
                    : t.scalars
            }
            checks.append(["package": url.path, "input": "tensor", "precision": precision.rawValue, "resolution": 16,
                           "classes": ["a", "b", "c", "d", "e"], "metadata": [String: String](),
                           "weights": try raw(rawWeights, "w-\(precision.rawValue)"), "weight_index": index])
            runs.append(["package": url.path, "input": "input", "x": try raw(x.scalars, "x"), "shape": x.shape,
                         "expected": try raw(expected.scalars, "logits")])
        }
        let checkJob = dir.appendingPathComponent("check.json"), runJob = dir.appendingPathComponent("run.json")
        try JSONSerialization.data(withJSONObject: checks).write(to: checkJob)
        try JSONSerialization.data(withJSONObject: runs).write(to: runJob)
        let c = PythonTools.run([Self.tools.appendingPathComponent("coreml_check.py").path, checkJob.path])
        XCTAssertEqual(c.status, 0, c.output)
        let interpreter = ProcessInfo.processInfo.environment["MIL_INTERPRETER"] ?? Self.tools.appendingPathComponent("mil_interpreter.py").path
        let report = dir.appendingPathComponent("report.json")
        let r = PythonTools.run([Self.tools.appendingPathComponent("coreml_numerics.py").path, runJob.path, report.path, interpreter])
        XCTAssertEqual(r.status, 0, r.output)
        print(r.output)
        guard r.status == 0 else { return }
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: [String: Any]]
        let scale = max(1, expected.scalars.map { abs($0) }.max() ?? 0)
        for run in runs {
            let path = run["package"] as! String
            let d = doc[path]?["max_abs"] as? Double ?? .infinity
            print("every-op net, Core ML \(path.hasSuffix("float16.mlpackage") ? "float16" : "float32"): max |Δ| \(d) for logits up to \(scale)")
            // The logits are sums over 16 tokens and reach the thousands: bounds relative to them, as for ONNX.
            XCTAssertLessThanOrEqual(d, path.hasSuffix("float16.mlpackage") ? 2e-2 * Double(scale) : 1e-5 * Double(scale), path)
        }
    }
}
