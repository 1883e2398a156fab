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
