import XCTest
@testable import FinchTensor

/// `BackwardHooks`: the report that a leaf's gradient is final, which data-parallel training
/// uses to start reducing it while the rest of backward runs.
final class BackwardHooksTests: XCTestCase {
    /// Each reached leaf is reported once, with its final gradient already in `grad` (also one
    /// used on several paths, and one holding a gradient from an earlier backward); a leaf no
    /// gradient reaches is not reported; `afterNode` follows each op's backward.
    func testGradientFinalReportsEachLeafOnceWithItsFinalGradient() {
        let a = Tensor([1, 2], requiresGrad: true)     // used twice: final only after both uses
        let b = Tensor([3, 4], requiresGrad: true)
        let unused = Tensor([5], requiresGrad: true)
        b.grad = Tensor([10, 10], shape: [2])          // accumulates from an earlier micro-batch
        _ = unused * 2
        let loss = ((a * b).sum() + (a * a).sum())
        var reports: [(ObjectIdentifier, [Float])] = []
        var nodes = 0
        loss.backward(hooks: BackwardHooks(gradientFinal: { reports.append((ObjectIdentifier($0), $0.grad!.scalars)) },
                                           afterNode: { nodes += 1 }))
        XCTAssertEqual(reports.count, 2)
        XCTAssertEqual(Set(reports.map(\.0)), [ObjectIdentifier(a), ObjectIdentifier(b)])
        for (id, g) in reports {
            if id == ObjectIdentifier(a) { XCTAssertEqual(g, [5, 8]) }      // b + 2a
            if id == ObjectIdentifier(b) { XCTAssertEqual(g, [11, 12]) }    // 10 + a
        }
        XCTAssertEqual(a.grad!.scalars, [5, 8])
        XCTAssertNil(unused.grad)
        // mul, sum, mul, sum, add: one call after each recorded op.
        XCTAssertEqual(nodes, 5)
    }

    /// Leaves nearer the loss are final earlier: in a chain, the last layer's weight is
    /// reported before the first's, which is what lets reduction start during backward.
    func testLeavesNearTheLossAreReportedFirst() {
        let w1 = Tensor([2], requiresGrad: true), w2 = Tensor([3], requiresGrad: true)
        let x = Tensor([1])
        var order: [ObjectIdentifier] = []
        ((x * w1) * w2).sum().backward(hooks: BackwardHooks(gradientFinal: { order.append(ObjectIdentifier($0)) }))
        XCTAssertEqual(order, [ObjectIdentifier(w2), ObjectIdentifier(w1)])
    }

    /// The same through a view of the weight (Linear multiplies by its transposed weight): the
    /// view runs as soon as its gradient is complete, not at the end of the sweep.
    func testWeightsUsedThroughAViewAreReportedWhereTheirOpRan() {
        let w1 = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
        let w2 = Tensor([5, 6, 7, 8], shape: [2, 2], requiresGrad: true)
        let x = Tensor([1, -1, 2, 0.5], shape: [2, 2])
        var events: [String] = []
        let h = x.matmul(w1.transposed()).relu()
        h.matmul(w2.transposed()).sum().backward(hooks: BackwardHooks(
            gradientFinal: { events.append($0 === w1 ? "w1" : $0 === w2 ? "w2" : "?") }, afterNode: { events.append("op") }))
        // w2 is final right after its matmul and transpose, before relu's and the first matmul's backward.
        XCTAssertEqual(events.filter { $0 != "op" }, ["w2", "w1"])
        let i2 = events.firstIndex(of: "w2")!, i1 = events.firstIndex(of: "w1")!
        XCTAssertEqual(events[i2 + 1..<i1].filter { $0 == "op" }.count, 3, "\(events)")   // relu, matmul, transpose
        XCTAssertEqual(i1, events.count - 1)
    }
}
