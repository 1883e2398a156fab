import Foundation
import XCTest
@testable import FinchTensor

final class AutogradTests: XCTestCase {
    func testGradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        (x * x).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [2, 4, 6])
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [5, 7, 9])
        x.zeroGrad()
        XCTAssertNil(x.grad)
    }

    func testDiamondGraphSumsBothPaths() {
        let x = Tensor([2], requiresGrad: true)
        let y = x * x          // used twice below
        (y * y + y).sum().backward()   // d/dx (x⁴ + x²) = 4x³ + 2x
        XCTAssertEqual(x.grad!.item, 36)
    }

    func testNoGradRecordsNothingAndDetachCutsTheGraph() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = noGrad { x * 2 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertNil(y.gradFnName)
        XCTAssertTrue(GradMode.isEnabled)
        let z = x.detach() * 2
        XCTAssertFalse(z.requiresGrad)
        let w = (x * 2)
        XCTAssertEqual(w.gradFnName, "mul_scalar")
        // Constants (no requiresGrad) never get a grad and cost no tape entry.
        let c = Tensor([3, 4])
        (x * c).sum().backward()
        XCTAssertNil(c.grad)
        XCTAssertEqual(x.grad!.scalars, [3, 4])
        // Recording is per thread: another thread is unaffected by this thread's noGrad.
        final class Flag: @unchecked Sendable { var value = false }
        noGrad {
            let other = Flag(), done = DispatchSemaphore(value: 0)
            Thread { other.value = GradMode.isEnabled; done.signal() }.start()
            done.wait()
            XCTAssertTrue(other.value)
            XCTAssertFalse(GradMode.isEnabled)
        }
    }

    func testNonScalarBackwardTakesAnExplicitGradient() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        (x * x).backward(Tensor([1, 0, 2]))
        XCTAssertEqual(x.grad!.scalars, [2, 0, 12])
    }

    func testGraphIsFreedAfterBackwardUnlessRetained() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = (x * x).sum()
        y.backward(retainGraph: true)
        y.backward()
        XCTAssertEqual(x.grad!.scalars, [4, 8])
        // After a non-retained backward the intermediate nodes hold nothing.
        let h = x.exp()
        let l = h.sum()
        l.backward()
        XCTAssertTrue(h.gradFn!.inputs.isEmpty)
        XCTAssertNil(h.gradFn!.backward)
    }

    /// A small MLP trained for many steps: the bytes held by live tensors return to the
    /// same level after every step, so nothing of the graph survives a step.
    func testTrainingLoopKeepsMemoryFlat() {
        var rng = TestRNG(3)
        let w1 = rng.tensor([8, 16], -0.5, 0.5), b1 = Tensor(zeros: [16], requiresGrad: true)
        let w2 = rng.tensor([16, 3], -0.5, 0.5)
        let x = rng.tensor([32, 8], requiresGrad: false)
        let labels = (0..<32).map { $0 % 3 }
        let target = Tensor.oneHot(labels, classes: 3)
        var levels: [Int] = []
        var losses: [Float] = []
        for _ in 0..<200 {
            let h = (x.matmul(w1) + b1).relu()
            let logits = h.matmul(w2)
            let loss = -(logits.logSoftmax(axis: 1) * target).sum() / 32
            loss.backward()
            losses.append(loss.item)
            noGrad {
                for p in [w1, b1, w2] {
                    p.assign(p - p.grad! * 0.1)
                    p.grad = nil
                }
            }
            levels.append(TensorStorage.liveBytes)
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "the loop should learn")
        XCTAssertEqual(Set(levels.suffix(190)).count, 1, "live tensor bytes drift across steps: \(levels.suffix(5))")
    }
}
