import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchOptim
import FinchIO
@testable import FinchTrain

final class SmallNet: Module {
    let conv = Conv2d(3, 4, kernelSize: 3, stride: 2)
    let bn = BatchNorm2d(4, activation: .relu)
    let head = Linear(4, 3)
    override init() {
        super.init()
        register("conv", conv)
        register("bn", bn)
        register("head", head)
    }
    override func callAsFunction(_ x: Tensor) -> Tensor {
        head(adaptiveAvgPool2d(bn(conv(x)), outputSize: (1, 1)).flattened(from: 1))
    }
}

final class CheckpointTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    struct Run {
        let model = SmallNet()
        let optimizer: Optimizer
        let scheduler: Scheduler
        let ema: ModelEma
        init(sgd: Bool) {
            var rng = RandomGenerator(seed: 1)
            for p in model.parameters where p.rank > 1 { Init.normal(p, std: 0.3, using: &rng) }
            let groups = ParameterGrouping.groups(for: model, options: .init(lr: 0.05, weightDecay: 0.01,
                                                                             prefixRates: [("head", .multiplier(2))]))
            optimizer = sgd ? SGD(groups: groups, momentum: 0.9, nesterov: true) : AdamW(groups: groups)
            scheduler = Scheduler(kind: .cosine(), groups: groups, epochs: 4, warmupEpochs: 1, warmupLR: 1e-3, updatesPerEpoch: 3)
            ema = ModelEma(model: model, decay: 0.9, useWarmup: true)
        }
        func step(_ t: Int) {
            var data = RandomGenerator(seed: UInt64(100 + t))
            let x = Tensor.normal([4, 3, 8, 8], using: &data)
            Loss.crossEntropy(model(x), labels: [0, 1, 2, t % 3]).backward()
            optimizer.step()
            optimizer.zeroGrad()
            scheduler.stepUpdate(t)
            ema.update(from: model, step: t)
        }
    }

    /// Six steps straight vs three, save, restore into fresh objects, three more: bit-identical.
    func testResumeIsExactForAdamWAndSGD() throws {
        for sgd in [false, true] {
            let straight = Run(sgd: sgd)
            for t in 1...6 { straight.step(t) }

            let first = Run(sgd: sgd)
            for t in 1...3 { first.step(t) }
            let url = dir.appendingPathComponent("last-\(sgd).h5")
            let ck = Checkpoint(epoch: 1, globalStep: 3, bestMetric: 0.5, modelName: "smallnet", classes: ["a", "b", "c"],
                                configYAML: "seed: 1\n", metrics: ["val/top1": [0.25, 0.5]], rngStates: ["sampler": [1, 2, 3, UInt64.max, 5]])
            try ck.write(to: url, model: first.model, optimizer: first.optimizer, scheduler: first.scheduler, ema: first.ema)

            let resumed = Run(sgd: sgd)
            try Checkpoint.restore(from: url, model: resumed.model, optimizer: resumed.optimizer, scheduler: resumed.scheduler, ema: resumed.ema)
            for t in 4...6 { resumed.step(t) }

            for ((n, a), (_, b)) in zip(straight.model.stateDict(), resumed.model.stateDict()) {
                switch (a, b) {
                case (.float(let x), .float(let y)): XCTAssertEqual(x.scalars, y.scalars, "\(sgd ? "SGD" : "AdamW"): \(n)")
                case (.int64(let x, _), .int64(let y, _)): XCTAssertEqual(x, y, n)
                default: XCTFail(n)
                }
            }
            for ((n, a), (_, b)) in zip(straight.ema.entries, resumed.ema.entries) {
                if case .float(let x) = a, case .float(let y) = b { XCTAssertEqual(x.scalars, y.scalars, "ema \(n)") }
            }
            XCTAssertEqual(straight.optimizer.groups.map(\.lr), resumed.optimizer.groups.map(\.lr))

            let back = try Checkpoint.read(url)
            XCTAssertEqual(back.epoch, 1)
            XCTAssertEqual(back.globalStep, 3)
            XCTAssertEqual(back.classes, ["a", "b", "c"])
            XCTAssertEqual(back.metrics["val/top1"], [0.25, 0.5])
            XCTAssertEqual(back.rngStates["sampler"], [1, 2, 3, UInt64.max, 5])
            XCTAssertEqual(back.configYAML, "seed: 1\n")
        }
    }

    func testWrongFilesAndMismatchesAreClearErrors() throws {
        let run = Run(sgd: false)
        run.step(1)
        let url = dir.appendingPathComponent("c.h5")
        try Checkpoint(epoch: 0, globalStep: 1, bestMetric: 0, modelName: "smallnet", classes: [], configYAML: "")
            .write(to: url, model: run.model, optimizer: run.optimizer, scheduler: run.scheduler, ema: nil)
        // An HDF5 file that is not a checkpoint.
        let other = dir.appendingPathComponent("other.h5")
        try HDF5File.writeAtomically(to: other) { try $0.setAttribute("x", .int64(1)) }
        XCTAssertThrowsError(try Checkpoint.read(other)) { XCTAssertTrue("\($0)".contains("not a Finch checkpoint")) }
        // A model of another shape.
        final class Other: Module { override init() { super.init(); register("head", Linear(2, 2)) } }
        XCTAssertThrowsError(try Checkpoint.restore(from: url, model: Other(), optimizer: nil, scheduler: nil, ema: nil)) {
            XCTAssertTrue("\($0)".contains("missing keys") || "\($0)".contains("unexpected keys"), "\($0)")
        }
        // EMA requested but absent.
        let fresh = Run(sgd: false)
        XCTAssertThrowsError(try Checkpoint.restore(from: url, model: fresh.model, optimizer: nil, scheduler: nil, ema: fresh.ema)) {
            XCTAssertTrue("\($0)".contains("no /ema"))
        }
    }
}
