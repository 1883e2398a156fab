import XCTest
import FinchTensor
import FinchNN
@testable import FinchOptim

final class TrainingUtilitiesTests: XCTestCase {
    /// torch.nn.utils.clip_grad_norm_(params, 1.5) on these gradients (torch 2.13).
    func testClipGradNormMatchesTorch() {
        let a = Tensor([1, -2, 0.5], requiresGrad: true), b = Tensor([3, 0.1, -0.2, 4], shape: [2, 2], requiresGrad: true)
        a.grad = Tensor([0.3, -4, 1])
        b.grad = Tensor([2, -1, 0.5, 0.25], shape: [2, 2])
        let total = GradientClipping.clipNorm([a, b], maxNorm: 1.5)
        XCTAssertEqual(total, 4.7331281, accuracy: 1e-5)
        XCTAssertEqual(a.grad!.scalars, [0.09507453, -1.2676604, 0.3169151].map { Float($0) }, accuracy: 1e-6)
        XCTAssertEqual(b.grad!.scalars, [0.6338302, -0.3169151, 0.15845755, 0.07922877], accuracy: 1e-6)
        // Below the threshold nothing changes.
        let before = b.grad!.scalars
        GradientClipping.clipNorm([b], maxNorm: 100)
        XCTAssertEqual(b.grad!.scalars, before)
        GradientClipping.clipValue([a], clip: 0.2)
        XCTAssertEqual(a.grad!.scalars, [0.09507453, -0.2, 0.2], accuracy: 1e-6)
    }

    /// Two micro-batches of 4 with the loss scaled by 1/2 give the gradient of one batch of 8.
    func testAccumulationEqualsOneLargerBatch() {
        var data = RandomGenerator(seed: 4)
        let x = Tensor.normal([8, 3], using: &data), labels = [0, 1, 2, 1, 0, 2, 2, 1]
        let lin1 = Linear(3, 3), lin2 = Linear(3, 3)
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        lin1.resetParameters(using: &r1)
        lin2.resetParameters(using: &r2)
        Loss.crossEntropy(lin1(x), labels: labels).backward()
        var acc = GradientAccumulation(steps: 2)
        var stepped: [Bool] = []
        for k in 0..<2 {
            let xs = x.narrowed(axis: 0, start: 4 * k, length: 4)
            (Loss.crossEntropy(lin2(xs), labels: Array(labels[(4 * k)..<(4 * k + 4)])) * acc.lossScale).backward()
            stepped.append(acc.microBatchDone())
        }
        XCTAssertEqual(stepped, [false, true])
        XCTAssertEqual(lin1.weight.grad!.scalars, lin2.weight.grad!.scalars, accuracy: 1e-6)
        XCTAssertEqual(lin1.bias!.grad!.scalars, lin2.bias!.grad!.scalars, accuracy: 1e-6)
    }

    /// Decay warmup values from timm's ModelEmaV3(decay=0.999, use_warmup=True, min_decay=0.1).get_decay.
    func testEmaDecayScheduleAndUpdateMatchTimm() throws {
        let lin = Linear(2, 1)
        let bn = BatchNorm2d(1)
        let model = Sequential([lin, bn])
        let ema = ModelEma(model: model, decay: 0.999, minDecay: 0.1, useWarmup: true)
        let expected = [0.0, 0.0, 0.3700394750525634, 0.5192501432308638, 0.7845565309968117, 0.9535841116638722, 0.9978455653099682]
        for (s, e) in zip([0, 1, 2, 3, 10, 100, 10000], expected) { XCTAssertEqual(ema.decay(at: s), e, accuracy: 1e-12) }
        lin.weight.assign(Tensor([1, 1], shape: [1, 2]))
        bn.numBatchesTracked.values = [5]
        ema.update(from: model, step: 2)   // decay 0.37: ema = 0 + 0.63·(1 − 0)
        let copy = Sequential([Linear(2, 1), BatchNorm2d(1)])
        try ema.copy(into: copy)
        let w = (copy.layers[0] as! Linear).weight.scalars
        XCTAssertEqual(w, [Float(1 - 0.3700394750525634), Float(1 - 0.3700394750525634)], accuracy: 1e-6)
        XCTAssertEqual((copy.layers[1] as! BatchNorm2d).numBatchesTracked.values, [5], "integer buffers are copied")
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
