import XCTest
import Foundation
import FinchTensor
@testable import FinchOptim

/// Several steps of AdamW and SGD against torch.optim, with two groups of different lr and
/// weight decay and gradients that change every step (Tests/Fixtures/tools/make_optimizer_reference.py).
final class OptimizerReferenceTests: XCTestCase {
    struct Case {
        let kind: String
        let options: [String: Any]
        let groups: [[String: Double]]
        let initial: [[Float]]
        let steps: [(grads: [[Float]], params: [[Float]])]
    }

    func loadCases() throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/optim/torch_optim_reference.json").standardized
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func floats(_ a: Any) -> [[Float]] { (a as! [[Double]]).map { $0.map { Float($0) } } }
        return (doc["cases"] as! [[String: Any]]).map { c in
            Case(kind: c["kind"] as! String, options: c["options"] as! [String: Any],
                 groups: c["groups"] as! [[String: Double]], initial: floats(c["initial"]!),
                 steps: (c["steps"] as! [[String: Any]]).map { (floats($0["grads"]!), floats($0["params"]!)) })
        }
    }

    func testMatchesTorchOverSeveralStepsAndGroups() throws {
        let cases = try loadCases()
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let p0 = Tensor(c.initial[0], shape: [5], requiresGrad: true)
            let p1 = Tensor(c.initial[1], shape: [2, 2], requiresGrad: true)
            let groups = [ParamGroup(name: "g0", parameters: [("p0", p0)], lr: Float(c.groups[0]["lr"]!),
                                     weightDecay: Float(c.groups[0]["weight_decay"]!)),
                          ParamGroup(name: "g1", parameters: [("p1", p1)], lr: Float(c.groups[1]["lr"]!),
                                     weightDecay: Float(c.groups[1]["weight_decay"]!))]
            let opt: Optimizer
            if c.kind == "adamw" {
                let betas = (c.options["betas"] as? [Double]).map { (Float($0[0]), Float($0[1])) } ?? (0.9, 0.999)
                opt = AdamW(groups: groups, betas: betas, eps: Float(c.options["eps"] as? Double ?? 1e-8),
                            amsgrad: c.options["amsgrad"] as? Bool ?? false)
            } else {
                opt = SGD(groups: groups, momentum: Float(c.options["momentum"] as? Double ?? 0),
                          dampening: Float(c.options["dampening"] as? Double ?? 0),
                          nesterov: c.options["nesterov"] as? Bool ?? false)
            }
            for (t, s) in c.steps.enumerated() {
                p0.grad = Tensor(s.grads[0], shape: [5])
                p1.grad = Tensor(s.grads[1], shape: [2, 2])
                opt.step()
                for (i, (mine, ref)) in zip([p0.scalars, p1.scalars], s.params).enumerated() {
                    for (a, b) in zip(mine, ref) where abs(a - b) > 1e-6 {
                        XCTFail("\(c.kind) \(c.options) step \(t + 1) param \(i): \(mine) vs torch \(ref)")
                        return
                    }
                }
            }
        }
    }

    /// The eight-lane update against torch's formula evaluated one Float at a time, bit for bit, on a
    /// parameter of 37 values (four full vectors and a tail of five), with and without amsgrad.
    func testVectorUpdateEqualsScalarFormulaExactly() {
        var rng = RandomGenerator(seed: 21)
        for amsgrad in [false, true] {
            let p = Tensor.normal([37], using: &rng)
            p.requiresGrad = true
            let (lr, wd, b1, b2, eps): (Float, Float, Float, Float, Float) = (0.01, 0.05, 0.9, 0.999, 1e-8)
            let opt = AdamW(parameters: [("p", p)], lr: lr, betas: (b1, b2), eps: eps, weightDecay: wd,
                            amsgrad: amsgrad)
            var param = p.scalars, m = [Float](repeating: 0, count: 37), v = m, vmax = m
            for t in 1...3 {
                let g = Tensor.normal([37], using: &rng)
                p.grad = g
                opt.step()
                let stepSize = Float(Double(lr) / (1 - pow(Double(b1), Double(t))))
                let bc2Sqrt = Float((1 - pow(Double(b2), Double(t))).squareRoot())
                let decay = Float(1 - Double(lr) * Double(wd))
                let c1 = Float(1 - Double(b1)), c2 = Float(1 - Double(b2))
                for i in 0..<37 {
                    let gi = g.scalars[i]
                    param[i] *= decay
                    m[i] += c1 * (gi - m[i])
                    v[i] = v[i] * b2 + c2 * (gi * gi)
                    vmax[i] = Swift.max(vmax[i], v[i])
                    let denom = (amsgrad ? vmax[i] : v[i]).squareRoot() / bc2Sqrt + eps
                    param[i] += -stepSize * (m[i] / denom)
                }
                XCTAssertEqual(p.scalars, param, "amsgrad \(amsgrad), step \(t)")
                XCTAssertEqual(opt.state(for: p)!.expAvg.scalars, m)
                XCTAssertEqual(opt.state(for: p)!.expAvgSq.scalars, v)
            }
        }
    }

    func testParametersWithoutGradientsGetNoStateAndZeroGradClears() {
        let a = Tensor([1, 2], requiresGrad: true), b = Tensor([3], requiresGrad: true)
        let opt = AdamW(parameters: [("a", a), ("b", b)])
        a.grad = Tensor([0.1, -0.2])
        opt.step()
        XCTAssertNotNil(opt.state(for: a))
        XCTAssertNil(opt.state(for: b), "a frozen parameter must cost no optimizer memory")
        XCTAssertEqual(b.scalars, [3])
        opt.zeroGrad()
        XCTAssertNil(a.grad)
    }
}

final class OptimizerStateTests: XCTestCase {
    /// Moments and step counts copied into a fresh optimizer continue the exact same trajectory.
    func testRestoredStateContinuesExactly() {
        func grads(_ t: Int) -> Tensor { Tensor([Float(t) * 0.1, -0.3, Float(t % 2)], shape: [3]) }
        let p1 = Tensor([1, 2, 3], requiresGrad: true), p2 = Tensor([1, 2, 3], requiresGrad: true)
        let a = AdamW(parameters: [("p", p1)], lr: 0.01, weightDecay: 0.1, amsgrad: true)
        for t in 1...3 { p1.grad = grads(t); a.step() }
        p2.assign(p1)
        let b = AdamW(parameters: [("p", p2)], lr: 0.01, weightDecay: 0.1, amsgrad: true)
        let s = a.state(for: p1)!
        b.restoreState(for: p2, step: s.step, expAvg: s.expAvg, expAvgSq: s.expAvgSq, maxExpAvgSq: s.maxExpAvgSq)
        for t in 4...6 {
            p1.grad = grads(t); a.step()
            p2.grad = grads(t); b.step()
        }
        XCTAssertEqual(p1.scalars, p2.scalars)

        let q1 = Tensor([1, 2, 3], requiresGrad: true), q2 = Tensor([1, 2, 3], requiresGrad: true)
        let c = SGD(parameters: [("q", q1)], lr: 0.1, momentum: 0.9, nesterov: true)
        for t in 1...3 { q1.grad = grads(t); c.step() }
        q2.assign(q1)
        let d = SGD(parameters: [("q", q2)], lr: 0.1, momentum: 0.9, nesterov: true)
        d.restoreMomentumBuffer(for: q2, c.momentumBuffer(for: q1)!)
        for t in 4...6 {
            q1.grad = grads(t); c.step()
            q2.grad = grads(t); d.step()
        }
        XCTAssertEqual(q1.scalars, q2.scalars)
    }
}
