import XCTest
import FinchTensor
@testable import FinchNN

/// A tiny conv net with timm-like names, to exercise the module system.
final class TinyNet: Module {
    let convStem = Conv2d(3, 4, kernelSize: 3, stride: 2, bias: false)
    let bn1 = BatchNorm2d(4, activation: .relu)
    let blocks = Sequential([Conv2d(4, 4, kernelSize: 3, groups: 4, bias: false), BatchNorm2d(4)])
    let pool = GlobalAvgPool()
    var classifier = Linear(4, 3)

    override init() {
        super.init()
        register("conv_stem", convStem)
        register("bn1", bn1)
        register("blocks", blocks)
        register("global_pool", pool)
        register("classifier", classifier)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        classifier(pool(blocks(bn1(convStem(x)))))
    }
}

final class ModuleTests: XCTestCase {
    func testNamesFollowPyTorchStateDictOrder() {
        let m = TinyNet()
        XCTAssertEqual(m.stateDict().map(\.name), [
            "conv_stem.weight",
            "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
            "blocks.0.weight",
            "blocks.1.weight", "blocks.1.bias", "blocks.1.running_mean", "blocks.1.running_var", "blocks.1.num_batches_tracked",
            "classifier.weight", "classifier.bias",
        ])
        XCTAssertEqual(m.parameterCount, 4 * 3 * 9 + 8 + 4 * 9 + 8 + 12 + 3)
        XCTAssertEqual(m.namedBuffers().map(\.name), ["bn1.running_mean", "bn1.running_var", "blocks.1.running_mean", "blocks.1.running_var"])
    }

    func testLoadStateDictRoundTripsAndKeepsTensorIdentity() throws {
        let a = TinyNet(), b = TinyNet()
        var rng = RandomGenerator(seed: 1)
        for p in a.parameters { Init.normal(p, std: 1, using: &rng) }
        a.bn1.numBatchesTracked.values = [7]
        let weightBefore = b.convStem.weight
        try b.load(stateDict: Dictionary(uniqueKeysWithValues: a.stateDict().map { ($0.name, $0.value) }))
        XCTAssertTrue(b.convStem.weight === weightBefore)
        XCTAssertEqual(b.convStem.weight.scalars, a.convStem.weight.scalars)
        XCTAssertEqual(b.classifier.bias!.scalars, a.classifier.bias!.scalars)
        XCTAssertEqual(b.bn1.numBatchesTracked.values, [7])
    }

    func testLoadReportsMissingUnexpectedAndWrongShapesWithoutChangingAnything() {
        let m = TinyNet()
        var sd = Dictionary(uniqueKeysWithValues: TinyNet().stateDict().map { ($0.name, $0.value) })
        sd.removeValue(forKey: "bn1.bias")
        sd["head.fc.weight"] = .float(Tensor(zeros: [2]))
        sd["classifier.weight"] = .float(Tensor(repeating: 5, shape: [5, 4]))
        sd["conv_stem.weight"] = .float(Tensor(repeating: 9, shape: [4, 3, 3, 3]))
        XCTAssertThrowsError(try m.load(stateDict: sd)) { error in
            let e = error as! StateDictError
            XCTAssertEqual(e.missing, ["bn1.bias"])
            XCTAssertEqual(e.unexpected, ["head.fc.weight"])
            XCTAssertEqual(e.mismatched, [.init(name: "classifier.weight", expected: [3, 4], found: [5, 4])])
            XCTAssertTrue(e.description.contains("wrong shape for classifier.weight: model has [3, 4], checkpoint has [5, 4]"))
        }
        XCTAssertEqual(m.convStem.weight.scalars.max(), 0, "a failed load must not change weights")
        // Non-strict still refuses wrong shapes but tolerates missing/unexpected keys.
        sd["classifier.weight"] = .float(Tensor(zeros: [3, 4]))
        XCTAssertNoThrow(try m.load(stateDict: sd, strict: false))
        XCTAssertEqual(m.convStem.weight.scalars.max(), 9)
    }

    func testFreezeByPrefixStopsGradientWork() {
        let m = TinyNet()
        var rng = RandomGenerator(seed: 2)
        for p in m.parameters { Init.normal(p, std: 0.5, using: &rng) }
        XCTAssertEqual(m.freeze(), m.parameters.count)
        XCTAssertEqual(m.unfreeze(prefixes: ["classifier", "blocks.1"]), 4)
        XCTAssertEqual(m.trainableParameterCount, 12 + 3 + 8)
        let x = Tensor.normal([2, 3, 8, 8], using: &rng)
        let y = m(x)
        Loss.crossEntropy(y, labels: [0, 2]).backward()
        XCTAssertNil(m.convStem.weight.grad)
        XCTAssertNil(m.bn1.weight.grad)
        XCTAssertNotNil(m.classifier.weight.grad)
        XCTAssertNotNil(m.blocks.layers[1].ownParameters[0].tensor.grad)
        XCTAssertTrue(Module.matches("blocks.1.0.conv.weight", prefixes: ["blocks.1"]))
        XCTAssertFalse(Module.matches("blocks.10.weight", prefixes: ["blocks.1"]))
    }

    func testTrainEvalModeReachesEveryModuleAndBatchNormTracksBatches() {
        let m = TinyNet()
        m.eval()
        XCTAssertTrue(m.namedModules().allSatisfy { !$0.module.isTraining })
        _ = m(Tensor(repeating: 1, shape: [2, 3, 8, 8]))
        XCTAssertEqual(m.bn1.numBatchesTracked.values, [0])
        m.train()
        _ = m(Tensor(repeating: 1, shape: [2, 3, 8, 8]))
        XCTAssertEqual(m.bn1.numBatchesTracked.values, [1])
        XCTAssertTrue(m.namedModules().allSatisfy { $0.module.isTraining })
    }

    func testDropoutModulesShareTheTreesRandomSource() {
        let seq = Sequential([Dropout(0.5), DropPath(0.5)])
        seq.setRandomSource(RandomSource(seed: 11))
        let a = seq(Tensor(repeating: 1, shape: [8, 4]))
        seq.setRandomSource(RandomSource(seed: 11))
        let b = seq(Tensor(repeating: 1, shape: [8, 4]))
        XCTAssertEqual(a.scalars, b.scalars)
        // DropPath zeroes whole samples.
        let dp = DropPath(0.5)
        dp.setRandomSource(RandomSource(seed: 3))
        let rows = dp(Tensor(repeating: 1, shape: [16, 5])).scalars
        for r in 0..<16 { XCTAssertEqual(Set(rows[(r * 5)..<(r * 5 + 5)]).count, 1) }
        seq.eval()
        XCTAssertEqual(seq(Tensor(repeating: 1, shape: [2, 2])).scalars, [1, 1, 1, 1])
    }
}
