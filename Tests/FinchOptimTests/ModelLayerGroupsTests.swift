import XCTest
import FinchTensor
import FinchNN
@testable import FinchOptim

/// Layer groups are the model's to declare (timm's `group_matcher`): the zoo's families declare
/// theirs, and a model from outside the zoo gets layer-wise decay by declaring its own, with no
/// change to FinchOptim.
final class ModelLayerGroupsTests: XCTestCase {
    /// Outside the zoo: a stem, two blocks and a head.
    final class Custom: ImageClassifier {
        init() {
            super.init(modelName: "custom_net", numClasses: 2, pretrainedConfig: .imagenet)
            for n in ["stem.weight", "blocks.0.weight", "blocks.1.weight", "head.weight"] { registerParameter(n, Tensor(zeros: [2, 2])) }
        }
        override var groupMatcher: LayerGroupMatcher? {
            LayerGroupMatcher([.init(group: 0, #/^stem/#, "^stem"), .init(group: 1, #/^blocks\.(\d+)/#, #"^blocks\.(\d+)"#)])
        }
    }

    func testAModelOutsideTheZooDeclaresItsOwnGroups() {
        let groups = ParameterGrouping.groups(for: Custom(), options: .init(lr: 1, layerDecay: 0.5))
        var scale: [String: Float] = [:]
        for g in groups { for p in g.parameters { scale[p.name] = g.lrScale } }
        XCTAssertEqual(scale, ["stem.weight": 0.125, "blocks.0.weight": 0.25, "blocks.1.weight": 0.5, "head.weight": 1])
        XCTAssertEqual(groups.map(\.name), ["layer_0_decay", "layer_1_decay", "layer_2_decay", "layer_3_decay"])
    }

    /// Every zoo name has its family's groups, and a built model reports the same rules itself,
    /// so grouping by the model and by its name agree.
    func testEveryZooModelDeclaresItsGroups() throws {
        for name in ModelRegistry.names {
            XCTAssertNotNil(ModelRegistry.groupMatcher(for: name), name)
        }
        XCTAssertNil(ModelRegistry.groupMatcher(for: "not_a_model"))
        for name in ["mobilenetv3_small_100", "resnet18"] {
            let model = try ModelRegistry.create(name, numClasses: 3)
            XCTAssertEqual(model.groupMatcher?.rules.map(\.pattern), ModelRegistry.groupMatcher(for: name)?.rules.map(\.pattern), name)
            let options = ParameterGroupingOptions(lr: 1e-3, weightDecay: 0.05, layerDecay: 0.75)
            let byModel = ParameterGrouping.groups(for: model, options: options)
            let byName = ParameterGrouping.groups(for: model, modelName: name, options: options)
            XCTAssertEqual(byModel.map(\.name), byName.map(\.name), name)
            XCTAssertEqual(byModel.map(\.lrScale), byName.map(\.lrScale), name)
            XCTAssertGreaterThan(byModel.count, 4, "\(name): one group per layer, not a single one")
        }
    }
}
