import XCTest
import FinchTensor
@testable import FinchOptim

/// AdamW updates all parameters in one parallel loop over their concatenation, so the parts of that
/// loop start and end inside parameters: every element must still get exactly its own parameter's
/// update, with the same bits at any thread count.
final class AdamWThreadsTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.threads }
    override func tearDown() { Parallel.setThreads(savedThreads) }

    /// Sizes around the vector width and the loop's grain, so part boundaries fall mid-parameter
    /// and mid-vector; the 5×7 parameter's gradient is a transposed (non-contiguous) view.
    private let shapes: [[Int]] = [[3], [8], [37], [1], [40_000], [5, 7], [70_001], [16], [2, 9]]

    private func run(threads: Int, fused: Bool, amsgrad: Bool) -> [[Float]] {
        Parallel.setThreads(threads)
        var rng = RandomGenerator(seed: 7)
        let params = shapes.map { s -> Tensor in
            let p = Tensor.normal(s, using: &rng)
            p.requiresGrad = true
            return p
        }
        let named = params.enumerated().map { (name: "p\($0.offset)", tensor: $0.element) }
        // Two groups with their own lr and weight decay; p3 gets no gradient (frozen).
        let groups = [ParamGroup(parameters: Array(named[..<4]), lr: 0.01, weightDecay: 0.05),
                      ParamGroup(parameters: Array(named[4...]), lr: 0.003, weightDecay: 0)]
        let optimizers = fused ? [AdamW(groups: groups, amsgrad: amsgrad)]
            : groups.flatMap { g in g.parameters.map { AdamW(groups: [ParamGroup(parameters: [$0], lr: g.lr, weightDecay: g.weightDecay)], amsgrad: amsgrad) } }
        for _ in 0..<3 {
            for (i, p) in params.enumerated() where i != 3 {
                if p.shape == [5, 7] {
                    p.grad = Tensor.normal([7, 5], using: &rng).transposed()
                } else {
                    p.grad = Tensor.normal(p.shape, using: &rng)
                }
            }
            for opt in optimizers { opt.step() }
        }
        var out = params.map(\.scalars)
        for p in params { if let s = optimizers.lazy.compactMap({ $0.state(for: p) }).first { out.append(s.expAvg.scalars + s.expAvgSq.scalars + (s.maxExpAvgSq?.scalars ?? [])) } }
        return out
    }

    func testOneLoopOverAllParametersEqualsOneOptimizerPerParameterAtOneTwoAndThreeThreads() {
        for amsgrad in [false, true] {
            let reference = run(threads: 1, fused: false, amsgrad: amsgrad)
            XCTAssertEqual(reference.count, 2 * shapes.count - 1, "the frozen parameter must get no state")
            for threads in [1, 2, 3] {
                XCTAssertEqual(run(threads: threads, fused: true, amsgrad: amsgrad), reference,
                               "amsgrad \(amsgrad), \(threads) threads")
            }
        }
    }

    func testFrozenParameterIsLeftAlone() {
        Parallel.setThreads(2)
        let a = Tensor(repeating: 1, shape: [50_000], requiresGrad: true)
        let b = Tensor([3, 4], requiresGrad: true)
        let opt = AdamW(parameters: [("a", a), ("b", b)], lr: 0.1)
        a.grad = Tensor(repeating: 0.5, shape: [50_000])
        opt.step()
        XCTAssertEqual(b.scalars, [3, 4])
        XCTAssertNil(opt.state(for: b))
        XCTAssertTrue(a.scalars.allSatisfy { $0 < 1 }, "every element of a must have moved")
    }
}
