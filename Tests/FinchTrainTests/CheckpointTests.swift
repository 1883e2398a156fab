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

    /// Metric names holding "/", ":" and "%" in every combination come back as written; the
    /// layer-decay names "lr/decay:classifier" and "lr:decay/classifier" no longer collide.
    func testMetricNamesWithSlashesColonsAndPercentsRoundTrip() throws {
        let run = Run(sgd: false)
        run.step(1)
        let names = ["lr/decay:classifier", "lr:decay/classifier", "lr/decay/classifier", "lr:decay:classifier", "val/top1",
                     "val:top1", "a%2Fb", "a/b", "50%", "%", ".", "..", ".hidden", "epoch_seconds", "_trainer/step_in_epoch", "é/ü:ß"]
        var metrics: [String: [Double]] = [:]
        for (i, n) in names.enumerated() { metrics[n] = [Double(i), Double(i) + 0.5] }
        let url = dir.appendingPathComponent("names.h5")
        try Checkpoint(epoch: 2, globalStep: 1, bestMetric: 0, modelName: "smallnet", classes: [], configYAML: "", metrics: metrics)
            .write(to: url, model: run.model, optimizer: run.optimizer, scheduler: nil, ema: nil)
        XCTAssertEqual(try Checkpoint.read(url).metrics, metrics)
        // And stay readable to h5py/h5dump users: "/" is the only character that changes in common names.
        XCTAssertTrue(try HDF5File(reading: url).root.group("metrics").memberNames().contains("lr%2Fdecay:classifier"))
        // `finch inspect` shows the metrics by their own names.
        let listing = try FileInspection.describe(url)
        XCTAssertTrue(listing.contains("  lr/decay:classifier: 0 0.5"), listing)
        XCTAssertTrue(listing.contains("  50%: "), listing)
        XCTAssertFalse(listing.contains("lr%2F"), listing)
        for bad in ["", "x%", "x%2", "x%zz", "x%+1"] { XCTAssertNil(MetricName.decode(bad == "" ? "%" : bad), bad) }
    }

    /// Checkpoints written before the encoding attribute stored the first "/" as ":"; they still
    /// read back with the names the trainer used ("lr/decay:classifier", not "lr/decay/classifier").
    func testLegacyColonMetricNamesStillRead() throws {
        let url = dir.appendingPathComponent("legacy.h5")
        try HDF5File.writeAtomically(to: url) { root in
            try Self.header(root)
            for n in ["lr:decay:classifier", "val:top1", "epoch_seconds", "_trainer:step_in_epoch"] {
                try root.write("metrics/\(n)", doubles: [1, 2])
            }
        }
        XCTAssertEqual(Set(try Checkpoint.read(url).metrics.keys), ["lr/decay:classifier", "val/top1", "epoch_seconds", "_trainer/step_in_epoch"])
    }

    /// A file whose escapes are malformed, or whose names decode to the same metric twice, is
    /// refused with the entry named.
    func testMalformedMetricNamesAreRefused() throws {
        for members in [["bad%2"], ["a%2Fb", "a%2fb"], ["x%ZZ"]] {
            let url = dir.appendingPathComponent("m.h5")
            try HDF5File.writeAtomically(to: url) { root in
                try Self.header(root)
                let g = try root.createGroup("metrics")
                try g.setAttribute("name_encoding", .string("percent"))
                for n in members { try g.write(n, doubles: [1]) }
            }
            XCTAssertThrowsError(try Checkpoint.read(url), "\(members)") {
                XCTAssertTrue("\($0)".contains("/metrics/"), "\($0)")
            }
        }
    }

    /// The bookkeeping attributes of a crafted file: negative counters and a NaN best metric
    /// (which would make every later comparison false) are refused by name.
    func testCraftedHeaderValuesAreRefused() throws {
        for (key, value) in [("epoch", HDF5AttributeValue.int64(-1)), ("global_step", .int64(-5)), ("best_metric", .double(.nan))] {
            let url = dir.appendingPathComponent("h.h5")
            try HDF5File.writeAtomically(to: url) { root in
                try Self.header(root)
                try root.setAttribute(key, value)
            }
            XCTAssertThrowsError(try Checkpoint.read(url), key) {
                XCTAssertEqual($0 as? CheckpointError, .corrupt(file: url.path, key: key))
            }
        }
    }

    /// Optimizer entries from a file are checked before they reach the optimizer (whose shape
    /// check is a precondition): a wrongly shaped moment and a negative learning rate are errors.
    func testCraftedOptimizerEntriesAreErrorsNotCrashes() throws {
        let run = Run(sgd: false)
        run.step(1)
        func craft(lr: Double, momentShape: [Int]) throws -> URL {
            let url = dir.appendingPathComponent("o.h5")
            try HDF5File.writeAtomically(to: url) { root in
                try Self.header(root)
                try Checkpoint.writeState(run.model.stateDict(), to: root, prefix: "model")
                let o = try root.createGroup("optimizer")
                for (i, g) in run.optimizer.groups.enumerated() {
                    let gg = try o.createGroup("groups/\(i)")
                    try gg.setAttribute("params", .strings(g.parameters.map(\.name)))
                    try gg.setAttribute("lr", .double(lr))
                }
                let sg = try o.createGroup("state/head.weight")
                try sg.setAttribute("step", .int64(1))
                try sg.write("exp_avg", tensor: .zeros(momentShape))
                try sg.write("exp_avg_sq", tensor: .zeros(momentShape))
            }
            return url
        }
        let fresh = Run(sgd: false)
        let wrongShape = try craft(lr: 0.01, momentShape: [2])
        XCTAssertThrowsError(try Checkpoint.restore(from: wrongShape, model: fresh.model, optimizer: fresh.optimizer, scheduler: nil, ema: nil)) {
            XCTAssertTrue("\($0)".contains("/optimizer/state/head.weight/exp_avg has shape [2]"), "\($0)")
        }
        let negative = try craft(lr: -1, momentShape: [3, 4])
        XCTAssertThrowsError(try Checkpoint.restore(from: negative, model: fresh.model, optimizer: fresh.optimizer, scheduler: nil, ema: nil)) {
            XCTAssertTrue("\($0)".contains("attribute lr (-1.0)"), "\($0)")
        }
        XCTAssertNoThrow(try Checkpoint.restore(from: try craft(lr: 0.01, momentShape: [3, 4]), model: fresh.model,
                                                optimizer: fresh.optimizer, scheduler: nil, ema: nil))
    }

    /// The optimizer's objections to a file's state come back naming the file's entry: state of
    /// another optimizer type, of a parameter the optimizer does not train, or a counter that is
    /// not an integer. SGD state laid out as before the state dict (the momentum written by path)
    /// still loads.
    func testOptimizerStateMisfitsNameTheFileEntry() throws {
        let adam = Run(sgd: false)
        adam.step(1)
        let written = dir.appendingPathComponent("adam.h5")
        try Checkpoint(epoch: 0, globalStep: 1, bestMetric: 0, modelName: "smallnet", classes: [], configYAML: "")
            .write(to: written, model: adam.model, optimizer: adam.optimizer, scheduler: nil, ema: nil)
        let sgd = Run(sgd: true)
        XCTAssertThrowsError(try Checkpoint.restore(from: written, model: sgd.model, optimizer: sgd.optimizer, scheduler: nil, ema: nil)) {
            XCTAssertEqual($0 as? CheckpointError, .mismatch(file: written.path, what: "/optimizer holds adamw state, the optimizer is sgd"))
        }

        func craft(_ name: String, type: String, _ state: (HDF5Group) throws -> Void) throws -> URL {
            let url = dir.appendingPathComponent("\(name).h5")
            try HDF5File.writeAtomically(to: url) { root in
                try Self.header(root)
                try Checkpoint.writeState(adam.model.stateDict(), to: root, prefix: "model")
                let o = try root.createGroup("optimizer")
                try o.setAttribute("type", .string(type))
                for (i, g) in adam.optimizer.groups.enumerated() {
                    let gg = try o.createGroup("groups/\(i)")
                    try gg.setAttribute("params", .strings(g.parameters.map(\.name)))
                    try gg.setAttribute("lr", .double(Double(g.lr)))
                }
                try state(o)
            }
            return url
        }
        let stranger = try craft("stranger", type: "adamw") { o in
            let sg = try o.createGroup("state/tail.weight")
            try sg.setAttribute("step", .int64(1))
            try sg.write("exp_avg", tensor: .zeros([3, 4]))
            try sg.write("exp_avg_sq", tensor: .zeros([3, 4]))
        }
        let fresh = Run(sgd: false)
        XCTAssertThrowsError(try Checkpoint.restore(from: stranger, model: fresh.model, optimizer: fresh.optimizer, scheduler: nil, ema: nil)) {
            XCTAssertEqual($0 as? CheckpointError,
                           .mismatch(file: stranger.path, what: "/optimizer/state/tail.weight is for a parameter in none of the optimizer's groups"))
        }
        let fractional = try craft("fractional", type: "adamw") { o in
            let sg = try o.createGroup("state/head.weight")
            try sg.setAttribute("step", .double(1.5))
            try sg.write("exp_avg", tensor: .zeros([3, 4]))
            try sg.write("exp_avg_sq", tensor: .zeros([3, 4]))
        }
        XCTAssertThrowsError(try Checkpoint.restore(from: fractional, model: fresh.model, optimizer: fresh.optimizer, scheduler: nil, ema: nil)) {
            XCTAssertEqual($0 as? CheckpointError, .corrupt(file: fractional.path, key: "/optimizer/state/head.weight attribute step"))
        }
        let momentum = Tensor((0..<12).map { Float($0) / 4 }, shape: [3, 4])
        let legacy = try craft("legacy-sgd", type: "sgd") { o in try o.write("state/head.weight/momentum_buffer", tensor: momentum) }
        let resumed = Run(sgd: true)
        try Checkpoint.restore(from: legacy, model: resumed.model, optimizer: resumed.optimizer, scheduler: nil, ema: nil)
        XCTAssertEqual((resumed.optimizer as! SGD).momentumBuffer(for: resumed.model.head.weight)?.scalars, momentum.scalars)
    }

    /// NaN or infinity anywhere in the state (weights, AdamW moments, SGD momentum, EMA) is
    /// refused before the file is touched: the previous checkpoint at that path stays as it was.
    func testNonFiniteStateIsNeverWritten() throws {
        for sgd in [false, true] {
            let run = Run(sgd: sgd)
            run.step(1)
            let url = dir.appendingPathComponent("finite-\(sgd).h5")
            let ck = Checkpoint(epoch: 1, globalStep: 1, bestMetric: 0, modelName: "smallnet", classes: [], configYAML: "")
            try ck.write(to: url, model: run.model, optimizer: run.optimizer, scheduler: nil, ema: run.ema)
            let before = try Data(contentsOf: url)
            let head = run.model.head.weight
            let moment = sgd ? (run.optimizer as! SGD).momentumBuffer(for: head)! : (run.optimizer as! AdamW).state(for: head)!.expAvgSq
            guard case .float(let emaHead)? = run.ema.entries.first(where: { $0.name == "head.weight" })?.value else { return XCTFail() }
            for (tensor, value, expected) in [(head, Float.nan, "model parameter head.weight"),
                                              (moment, .infinity, sgd ? "SGD momentum buffer of head.weight" : "AdamW exp_avg_sq of head.weight"),
                                              (emaHead, -.infinity, "EMA weight head.weight")] {
                let saved = tensor.basePointer[1]
                tensor.basePointer[1] = value
                XCTAssertThrowsError(try ck.write(to: url, model: run.model, optimizer: run.optimizer, scheduler: nil, ema: run.ema)) {
                    XCTAssertEqual($0 as? CheckpointError, .nonFinite(file: url.path, what: expected))
                }
                tensor.basePointer[1] = saved
                XCTAssertEqual(try Data(contentsOf: url), before, expected)
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
            XCTAssertEqual(leftovers, [])
        }
    }

    /// The attributes `Checkpoint.read` requires, for hand-made files.
    static func header(_ root: HDF5Group) throws {
        try root.setAttribute("format", .string(Checkpoint.format))
        try root.setAttribute("version", .int64(1))
        try root.setAttribute("epoch", .int64(2))
        try root.setAttribute("global_step", .int64(4))
        try root.setAttribute("best_metric", .double(0.5))
        try root.setAttribute("model", .string("smallnet"))
    }
}
