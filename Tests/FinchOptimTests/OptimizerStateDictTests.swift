import XCTest
import FinchTensor
import FinchNN
@testable import FinchOptim

/// The optimizers' state API: what `stateDict()` gives, what `load(stateDict:)` takes and
/// refuses, and state following the parameter when the groups are rebuilt.
final class OptimizerStateDictTests: XCTestCase {
    static func grads(_ t: Int, _ k: Int) -> Tensor {
        Tensor([Float(t) * 0.1 + Float(k), -0.3, Float(t % 2)], shape: [3])
    }

    /// Two groups of parameters with the same names and values, so two optimizers can be compared.
    static func parameters() -> [(name: String, tensor: Tensor)] {
        [("backbone.weight", Tensor([1, 2, 3], requiresGrad: true)), ("head.weight", Tensor([-1, 0.5, 2], requiresGrad: true))]
    }

    static func groups(_ ps: [(name: String, tensor: Tensor)]) -> [ParamGroup] {
        [ParamGroup(name: "a", parameters: [ps[0]], lr: 0.01, weightDecay: 0.1),
         ParamGroup(name: "b", parameters: [ps[1]], lr: 0.02)]
    }

    static func run(_ o: Optimizer, _ ps: [(name: String, tensor: Tensor)], steps: ClosedRange<Int>) {
        for t in steps {
            for (k, p) in ps.enumerated() { p.tensor.grad = grads(t, k) }
            o.step()
            o.zeroGrad()
        }
    }

    /// Three steps, the state dict into a fresh optimizer over copies, three more steps: the
    /// same bits as six steps straight, for AdamW with amsgrad and SGD with Nesterov momentum.
    func testStateDictRoundTripContinuesExactly() throws {
        let makers: [(String, ([ParamGroup]) -> Optimizer)] = [
            ("adamw", { AdamW(groups: $0, betas: (0.8, 0.99), eps: 1e-6, amsgrad: true) }),
            ("sgd", { SGD(groups: $0, momentum: 0.9, nesterov: true) }),
        ]
        for (type, make) in makers {
            let ps = Self.parameters(), a = make(Self.groups(ps))
            Self.run(a, ps, steps: 1...3)
            let sd = a.stateDict()
            XCTAssertEqual(sd.type, type)
            XCTAssertEqual(sd.parameters.map(\.name), ["backbone.weight", "head.weight"], type)
            if type == "adamw" {
                XCTAssertEqual(sd.hyperparameters.map(\.key), ["betas", "eps", "amsgrad"])
                XCTAssertEqual(sd.parameters[0].state.tensors.map(\.key), ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
                XCTAssertEqual(sd.parameters[0].state.counter("step"), 3)
            } else {
                XCTAssertEqual(sd.hyperparameters.map(\.key), ["momentum", "dampening", "nesterov"])
                XCTAssertEqual(sd.parameters[0].state.tensors.map(\.key), ["momentum_buffer"])
            }

            let qs = Self.parameters()
            for (p, q) in zip(ps, qs) { q.tensor.assign(p.tensor) }
            let b = make(Self.groups(qs))
            try b.load(stateDict: sd)
            Self.run(a, ps, steps: 4...6)
            Self.run(b, qs, steps: 4...6)
            for (p, q) in zip(ps, qs) { XCTAssertEqual(p.tensor.scalars, q.tensor.scalars, "\(type): \(p.name)") }
        }
    }

    /// Every kind of misfit is a typed error, and a refused state dict changes nothing, not even
    /// the entries before the bad one.
    func testLoadRefusesMisfitsAndChangesNothing() throws {
        let ps = Self.parameters(), trained = AdamW(groups: Self.groups(ps))
        Self.run(trained, ps, steps: 1...2)
        let good = trained.stateDict()
        func edited(_ change: (inout OptimizerStateDict) -> Void) -> OptimizerStateDict {
            var sd = good
            change(&sd)
            return sd
        }
        let cases: [(OptimizerStateDict, OptimizerStateError)] = [
            (edited { $0.type = "sgd" }, .wrongType(expected: "adamw", found: "sgd")),
            (edited { $0.parameters[1].name = "neck.weight" }, .unknownParameter("neck.weight")),
            (edited { $0.parameters[1].state.tensors[0].tensor = Tensor(zeros: [2]) },
             .shapeMismatch(parameter: "head.weight", key: "exp_avg", shape: [2], expected: [3])),
            (edited { $0.parameters[1].state.tensors.remove(at: 1) }, .missingEntry(parameter: "head.weight", key: "exp_avg_sq")),
            (edited { $0.parameters[1].state.counters = [] }, .missingEntry(parameter: "head.weight", key: "step")),
            (edited { $0.parameters[1].state.counters = [("step", -1)] }, .invalidCounter(parameter: "head.weight", key: "step", value: -1)),
            (edited { $0.parameters[1].state.tensors.append(("momentum_buffer", Tensor(zeros: [3]))) },
             .unexpectedEntry(parameter: "head.weight", key: "momentum_buffer")),
        ]
        for (sd, expected) in cases {
            let qs = Self.parameters(), fresh = AdamW(groups: Self.groups(qs))
            XCTAssertThrowsError(try fresh.load(stateDict: sd), "\(expected)") {
                XCTAssertEqual($0 as? OptimizerStateError, expected)
            }
            XCTAssertNil(fresh.state(for: qs[0].tensor), "\(expected): the valid first entry must not be applied either")
            XCTAssertNil(fresh.state(for: qs[1].tensor), "\(expected)")
        }
        XCTAssertEqual("\(OptimizerStateError.shapeMismatch(parameter: "head.weight", key: "exp_avg", shape: [2], expected: [3]))",
                       "exp_avg of head.weight has shape [2], the parameter [3]")
        // A file that did not record the type is taken on its entries.
        let untyped = AdamW(groups: Self.groups(Self.parameters()))
        XCTAssertNoThrow(try untyped.load(stateDict: edited { $0.type = nil }))
    }

    /// Gradual unfreezing: the head trained alone in group 0, then the groups are rebuilt with the
    /// backbone first. The head's moments follow its name into the new group; the backbone has none.
    func testStateFollowsTheParameterWhenGroupsAreRebuilt() throws {
        let ps = Self.parameters()
        let headOnly = AdamW(groups: [ParamGroup(name: "head", parameters: [ps[1]], lr: 0.02)])
        for t in 1...3 { ps[1].tensor.grad = Self.grads(t, 1); headOnly.step() }
        let rebuilt = AdamW(groups: Self.groups(ps))
        try rebuilt.carryState(from: headOnly)
        let before = try XCTUnwrap(headOnly.state(for: ps[1].tensor)), after = try XCTUnwrap(rebuilt.state(for: ps[1].tensor))
        XCTAssertEqual(after.step, 3)
        XCTAssertEqual(after.expAvg.scalars, before.expAvg.scalars)
        XCTAssertEqual(after.expAvgSq.scalars, before.expAvgSq.scalars)
        XCTAssertFalse(after.expAvg === before.expAvg, "the new optimizer owns its copy")
        XCTAssertNil(rebuilt.state(for: ps[0].tensor))
        // The other way (full → head) drops the state of parameters that stop training.
        let narrowed = AdamW(groups: [ParamGroup(name: "head", parameters: [ps[1]], lr: 0.02)])
        ps[0].tensor.grad = Self.grads(1, 0)
        rebuilt.step()
        try narrowed.carryState(from: rebuilt)
        XCTAssertEqual(narrowed.stateDict().parameters.map(\.name), ["head.weight"])
        // Carrying nothing (the trainer's first build) is no type clash; carrying moments into SGD is.
        XCTAssertNoThrow(try SGD(groups: Self.groups(ps), momentum: 0.9).carryState(from: AdamW(groups: [])))
        XCTAssertThrowsError(try SGD(groups: Self.groups(ps), momentum: 0.9).carryState(from: rebuilt)) {
            XCTAssertEqual($0 as? OptimizerStateError, .wrongType(expected: "sgd", found: "adamw"))
        }
    }

    func testSchedulerStateRoundTripAndRangeChecks() throws {
        func groups() -> [ParamGroup] { [ParamGroup(parameters: [], lr: 0.1)] }
        let a = Scheduler(kind: .plateau(mode: .min, patience: 1, decayRate: 0.5, cooldown: 2), groups: groups(), epochs: 10)
        for (e, metric) in [1.0, 0.9, 0.95, 0.97].enumerated() { a.step(epoch: e + 1, metric: metric) }
        let s = a.stateDict()
        XCTAssertEqual(s, SchedulerState(lastT: 4, plateauBest: 0.9, plateauBadEpochs: 0, plateauCooldown: 2))
        let b = Scheduler(kind: .plateau(mode: .min, patience: 1, decayRate: 0.5, cooldown: 2), groups: groups(), epochs: 10)
        try b.load(stateDict: s)
        XCTAssertEqual(b.stateDict(), s)
        for bad in [SchedulerState(lastT: -2, plateauBest: 0, plateauBadEpochs: 0, plateauCooldown: 0),
                    SchedulerState(lastT: 1, plateauBest: .nan, plateauBadEpochs: 0, plateauCooldown: 0),
                    SchedulerState(lastT: 1, plateauBest: 0, plateauBadEpochs: -1, plateauCooldown: 0),
                    SchedulerState(lastT: 1, plateauBest: 0, plateauBadEpochs: 0, plateauCooldown: -3)] {
            XCTAssertThrowsError(try b.load(stateDict: bad)) { XCTAssertTrue($0 is SchedulerStateError, "\($0)") }
            XCTAssertEqual(b.stateDict(), s, "a refused state changes nothing")
        }
    }
}
