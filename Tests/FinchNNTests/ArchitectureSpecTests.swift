import XCTest
import Foundation
import FinchTensor
@testable import FinchNN

/// Every registered model against timm's own state-dict layout (Tests/Fixtures/architectures,
/// made by dump_architectures.py): names in order, shapes, dtypes, parameter count, pretrained cfg.
final class ArchitectureSpecTests: XCTestCase {
    static let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/architectures").standardized

    func spec(_ model: String) throws -> [String: Any]? {
        let url = Self.specs.appendingPathComponent("\(model)_1000.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
    }

    func testRegisteredModelsMatchTimmLayouts() throws {
        XCTAssertFalse(ModelRegistry.names.isEmpty)
        for name in ModelRegistry.names {
            guard let doc = try spec(name) else { XCTFail("no timm spec for \(name)"); continue }
            let model = try ModelRegistry.create(name, numClasses: 1000)
            let ours = model.stateDict()
            let theirs = doc["state_dict"] as! [[String: Any]]
            XCTAssertEqual(ours.map(\.name), theirs.map { $0["name"] as! String }, "\(name): state-dict names and order")
            for (o, t) in zip(ours, theirs) {
                XCTAssertEqual(o.value.shape, t["shape"] as! [Int], "\(name): shape of \(o.name)")
                let dtype: String
                switch o.value { case .float: dtype = "float32"; case .int64: dtype = "int64" }
                XCTAssertEqual(dtype, t["dtype"] as? String, "\(name): dtype of \(o.name)")
            }
            XCTAssertEqual(model.parameterCount, doc["parameters"] as? Int, "\(name): parameter count")
            let cfg = doc["pretrained_cfg"] as! [String: Any]
            XCTAssertEqual(model.pretrainedConfig.inputSize, (cfg["input_size"] as! [Int])[1], name)
            XCTAssertEqual(Double(model.pretrainedConfig.cropPct), (cfg["crop_pct"] as! NSNumber).doubleValue, accuracy: 1e-6, name)
            XCTAssertEqual(model.pretrainedConfig.interpolation, cfg["interpolation"] as? String, name)
            XCTAssertEqual(model.pretrainedConfig.mean, (cfg["mean"] as! [NSNumber]).map { Float($0.doubleValue) }, name)
        }
    }

    func testOtherClassCountsChangeOnlyTheHead() throws {
        for name in ModelRegistry.names {
            let a = try ModelRegistry.create(name, numClasses: 1000), b = try ModelRegistry.create(name, numClasses: 7)
            let sa = Dictionary(uniqueKeysWithValues: a.stateDict().map { ($0.name, $0.value.shape) })
            for (n, v) in b.stateDict() where sa[n] != v.shape {
                XCTAssertTrue(Module.matches(n, prefixes: b.classifierPrefixes), "\(name): \(n) changed with the class count")
            }
            var rng = RandomGenerator(seed: 1)
            let before = b.stateDict().filter { !Module.matches($0.name, prefixes: b.classifierPrefixes) }.count
            b.resetClassifier(numClasses: 3, using: &rng)
            XCTAssertEqual(b.numClasses, 3)
            XCTAssertEqual(b.stateDict().filter { !Module.matches($0.name, prefixes: b.classifierPrefixes) }.count, before)
        }
    }

    func testUnknownModelsListTheZoo() {
        XCTAssertThrowsError(try ModelRegistry.create("mobilenetv4_tiny", numClasses: 5)) { e in
            XCTAssertTrue("\(e)".contains("unknown model 'mobilenetv4_tiny'; available: "), "\(e)")
            XCTAssertTrue("\(e)".contains("mobilenetv3_small_100"))
        }
    }

    /// timm's goog init: conv weights N(0, √(2/fan_out)), BatchNorm 1/0, conv biases 0.
    func testInitialisationFollowsTheFamilyScheme() throws {
        let m = try ModelRegistry.create("tf_efficientnet_lite0", numClasses: 5, seed: 3)
        let w = m.stateDict().first { $0.name == "conv_head.weight" }!.value
        guard case .float(let t) = w else { return XCTFail() }
        let v = t.scalars, n = Double(v.count)
        let mean = v.reduce(0.0) { $0 + Double($1) } / n
        let std = (v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n).squareRoot()
        let expected = (2.0 / 1280.0).squareRoot()   // fan_out = 1·1·1280
        XCTAssertEqual(std, expected, accuracy: expected * 0.02, "409,600 draws: 2% is over 10 standard errors")
        XCTAssertEqual(abs(mean), 0, accuracy: expected * 0.01)
        for (name, value) in m.stateDict() where name.hasSuffix("bn1.weight") || name.hasSuffix("bn1.bias") {
            guard case .float(let b) = value else { continue }
            XCTAssertEqual(Set(b.scalars), [name.hasSuffix("weight") ? 1 : 0], name)
        }
    }
}
