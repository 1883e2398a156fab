import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO

final class PretrainedLoadingTests: XCTestCase {
    /// A 1000-class checkpoint into a 5-class model: the backbone loads, the head is re-initialised
    /// (timm's pretrained + num_classes); without head replacement the mismatch is an error.
    func testHeadReplacementFromSafeTensorsAndHDF5() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-pre-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 1000, seed: 1)
        let entries = source.stateDict().map { name, value -> (name: String, value: SafeTensorsValue) in
            switch value {
            case .float(let t): return (name, .float32(t))
            case .int64(let v, let s): return (name, .int64(v, shape: s))
            }
        }
        let st = dir.appendingPathComponent("imagenet.safetensors")
        try writeSafeTensors(entries, metadata: ["model": "mobilenetv3_small_100"], to: st)
        let h5 = dir.appendingPathComponent("imagenet.h5")
        try HDF5File.writeAtomically(to: h5) { root in
            for (name, value) in source.stateDict() {
                switch value {
                case .float(let t): try root.write("model/\(name)", tensor: t)
                case .int64(let v, let s): try root.write("model/\(name)", int64s: v, shape: s)
                }
            }
        }
        for url in [st, h5] {
            let target = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 5, seed: 2)
            let report = try target.loadPretrained(url, seed: 3)
            XCTAssertEqual(report.replacedHead, ["classifier.bias", "classifier.weight"])
            let a = Dictionary(uniqueKeysWithValues: source.stateDict().map { ($0.name, $0.value) })
            for (name, value) in target.stateDict() where !name.hasPrefix("classifier") {
                if case .float(let t) = value, case .float(let s)? = a[name] { XCTAssertEqual(t.scalars, s.scalars, name) }
            }
            XCTAssertEqual(target.numClasses, 5)
            XCTAssertThrowsError(try ModelRegistry.create("mobilenetv3_small_100", numClasses: 5).loadPretrained(url, replaceHead: false)) { e in
                XCTAssertTrue("\(e)".contains("wrong shape for classifier.weight: model has [5, 1024], checkpoint has [1000, 1024]"), "\(e)")
                XCTAssertTrue("\(e)".contains(url.lastPathComponent), "\(e)")
            }
        }
        // Another architecture's weights: a clear list of what does not fit.
        XCTAssertThrowsError(try ModelRegistry.create("tf_efficientnet_lite0", numClasses: 5).loadPretrained(st)) { e in
            XCTAssertTrue("\(e)".contains("missing keys") && "\(e)".contains("imagenet.safetensors"), "\(e)")
        }
    }
}
