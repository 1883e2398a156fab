import XCTest
import Foundation
import FinchTensor
@testable import FinchOptim

/// Learning rates of two groups (base 1e-3, and 5e-4 with lr scale 0.5) at every step of
/// schedules built by timm's create_scheduler_v2 (Tests/Fixtures/tools/make_schedule_reference.py).
final class SchedulerTests: XCTestCase {
    func reference() throws -> [[String: Any]] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/optim/timm_schedules.json").standardized
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return doc["cases"] as! [[String: Any]]
    }

    func makeGroups() -> [ParamGroup] {
        [ParamGroup(name: "a", parameters: [("a", Tensor([0]))], lr: 1e-3),
         ParamGroup(name: "b", parameters: [("b", Tensor([0]))], lr: 5e-4, lrScale: 0.5)]
    }

    func testMatchesTimmSchedules() throws {
        let cases = try reference()
        XCTAssertEqual(cases.count, 8)
        for c in cases {
            let name = c["name"] as! String
            let args = c["args"] as! [String: Any]
            let expected = c["lrs"] as! [[Double]]
            let d = { (k: String, v: Double) in (args[k] as? NSNumber)?.doubleValue ?? v }
            let i = { (k: String, v: Int) in (args[k] as? NSNumber)?.intValue ?? v }
            let kind: Scheduler.Kind
            switch args["sched"] as! String {
            case "cosine": kind = .cosine(cycleMul: d("cycle_mul", 1), cycleDecay: d("cycle_decay", 0.1),
                                          cycleLimit: i("cycle_limit", 1), kDecay: d("k_decay", 1))
            case "step": kind = .step(decayT: i("decay_epochs", 90), decayRate: d("decay_rate", 0.1))
            case "multistep": kind = .multistep(milestones: args["decay_milestones"] as! [Int], decayRate: d("decay_rate", 0.1))
            case "constant": kind = .constant
            default: kind = .plateau(mode: .max, patience: i("patience_epochs", 10), decayRate: d("decay_rate", 0.1))
            }
            let groups = makeGroups()
            let perUpdate = (args["step_on_epochs"] as? Bool) == false
            let s = Scheduler(kind: kind, groups: groups, epochs: i("num_epochs", 300), warmupEpochs: i("warmup_epochs", 0),
                              warmupLR: d("warmup_lr", 1e-5), minLR: d("min_lr", 0),
                              warmupPrefix: (args["warmup_prefix"] as? Bool) ?? false,
                              updatesPerEpoch: perUpdate ? i("updates_per_epoch", 1) : nil)
            let metrics = c["metrics"] as? [Double]
            for (t, lrs) in expected.enumerated() {
                if t > 0 {
                    if perUpdate { s.stepUpdate(t) } else { s.step(epoch: t, metric: metrics?[t - 1]) }
                }
                for (g, e) in zip(groups, lrs) where abs(Double(g.lr) - e) > 1e-9 + 1e-6 * abs(e) {
                    XCTFail("\(name) t=\(t) group \(g.name): \(g.lr) vs timm \(e)")
                    return
                }
            }
        }
    }

    func testRestoreContinuesTheSameSchedule() {
        let g1 = makeGroups(), g2 = makeGroups()
        let a = Scheduler(kind: .cosine(), groups: g1, epochs: 10, warmupEpochs: 2, updatesPerEpoch: 5)
        for t in 1...23 { a.stepUpdate(t) }
        let b = Scheduler(kind: .cosine(), groups: g2, epochs: 10, warmupEpochs: 2, updatesPerEpoch: 5)
        b.restore(lastT: a.lastT, plateauBest: a.plateauBest, plateauBadEpochs: a.plateauBadEpochs, plateauCooldown: a.plateauCooldown)
        XCTAssertEqual(g1.map(\.lr), g2.map(\.lr))
        a.stepUpdate(24)
        b.stepUpdate(24)
        XCTAssertEqual(g1.map(\.lr), g2.map(\.lr))
    }
}
