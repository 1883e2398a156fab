import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchOptim

/// A module whose parameters carry dotted timm names directly, built from an architecture spec,
/// so grouping rules can be checked against timm without the model code.
final class FlatModule: Module {
    init(parameters: [(String, [Int])]) {
        super.init()
        for (n, s) in parameters { registerParameter(n, Tensor(zeros: s)) }
    }
}

final class ParameterGroupingTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures").standardized

    func spec(_ model: String) throws -> [(String, [Int])] {
        let url = Self.fixtures.appendingPathComponent("architectures/\(model)_1000.json")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (doc["state_dict"] as! [[String: Any]]).compactMap { e in
            let n = e["name"] as! String
            if n.hasSuffix("running_mean") || n.hasSuffix("running_var") || n.hasSuffix("num_batches_tracked") { return nil }
            return (n, e["shape"] as! [Int])
        }
    }

    /// timm's param_groups_layer_decay(layer_decay=0.75, weight_decay=0.05, min_scale=0.1) for each
    /// model: every parameter's lr scale and weight decay, and the number of groups.
    func testLayerDecayTablesMatchTimm() throws {
        let url = Self.fixtures.appendingPathComponent("optim/timm_layer_decay.json")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let models = doc["models"] as! [String: [String: Any]]
        XCTAssertTrue(models.keys.contains("mobilenetv3_small_100") && models.keys.contains("mobilevit_xxs"))
        for (model, table) in models {
            let m = FlatModule(parameters: try spec(model))
            let groups = ParameterGrouping.groups(for: m, modelName: model, options: .init(
                lr: 1e-3, weightDecay: 0.05, layerDecay: 0.75, minScale: 0.1))
            XCTAssertEqual(groups.count, table["groups"] as? Int, "\(model): group count")
            var byParam: [String: ParamGroup] = [:]
            for g in groups { for p in g.parameters { byParam[p.name] = g } }
            let ids = LayerGroupMatcher.forModel(model)!.layerIds(m.namedParameters().map(\.name))
            XCTAssertEqual(ids.count, table["num_layers"] as? Int, "\(model): layer count")
            for row in table["params"] as! [[Any]] {
                let name = row[0] as! String
                let layer = (row[1] as! NSNumber).intValue
                let scale = (row[2] as! NSNumber).floatValue, wd = (row[3] as! NSNumber).floatValue
                guard let g = byParam[name] else { XCTFail("\(model): \(name) in no group"); continue }
                XCTAssertEqual(ids.ids[name], layer, "\(model): layer of \(name)")
                XCTAssertEqual(g.lrScale, scale, accuracy: 1e-6, "\(model): lr scale of \(name)")
                XCTAssertEqual(g.weightDecay, wd, "\(model): weight decay of \(name)")
                XCTAssertEqual(g.lr, 1e-3 * scale, accuracy: 1e-9)
            }
        }
    }

    func testPrefixRatesFrozenParametersAndTable() throws {
        let m = FlatModule(parameters: try spec("mobilenetv3_small_100"))
        m.freeze(prefixes: ["blocks.0"])
        let groups = ParameterGrouping.groups(for: m, options: .init(
            lr: 3e-4, weightDecay: 0.05,
            prefixRates: [("conv_stem", .lr(1e-5)), ("classifier", .lr(5e-5)), ("blocks.4", .multiplier(2))]))
        let names = Set(groups.flatMap { $0.parameters.map(\.name) })
        XCTAssertFalse(names.contains { $0.hasPrefix("blocks.0.") }, "frozen parameters must be in no group")
        XCTAssertEqual(names.count, m.namedParameters().filter { $0.tensor.requiresGrad }.count)
        func group(of p: String) -> ParamGroup { groups.first { $0.parameters.contains { $0.name == p } }! }
        XCTAssertEqual(group(of: "conv_stem.weight").lr, 1e-5)
        XCTAssertEqual(group(of: "conv_stem.weight").weightDecay, 0.05)
        XCTAssertEqual(group(of: "classifier.weight").lr, 5e-5)
        XCTAssertEqual(group(of: "classifier.bias").weightDecay, 0, "biases get no weight decay")
        XCTAssertEqual(group(of: "blocks.4.0.conv_pw.weight").lr, 6e-4, accuracy: 1e-10)
        XCTAssertEqual(group(of: "blocks.1.0.conv_pw.weight").lr, 3e-4)
        XCTAssertEqual(group(of: "bn1.weight").weightDecay, 0)
        let table = ParameterGrouping.describe(groups)
        XCTAssertTrue(table.contains("decay:conv_stem"), table)
        XCTAssertTrue(table.contains("no_decay"), table)
    }
}
