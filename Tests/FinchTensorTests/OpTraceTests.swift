import XCTest
@testable import FinchTensor

/// Each op describes itself to a tracer through its `record(...)` call: one op, one description.
final class OpTraceTests: XCTestCase {
    func testEachOpIsRecordedOnceWithItsKindOperandsAndOutput() {
        let a = Tensor([1, -2, 3, -4], shape: [1, 1, 2, 2]), b = Tensor([0.5], shape: [1])
        let w = Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2])
        let tracer = OpTracer()
        let (sum, act, conv) = OpTrace.run(tracer) { () -> (Tensor, Tensor, Tensor) in
            let s = a + b
            let r = s.relu()
            return (s, r, conv2d(r, weight: w, stride: (1, 1), padding: (1, 1)))
        }
        XCTAssertEqual(tracer.ops.map(\.kind), [.add, .relu, .conv2d(stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1)])
        XCTAssertTrue(tracer.ops[0].inputs[0] === a && tracer.ops[0].inputs[1] === b && tracer.ops[0].output === sum)
        XCTAssertTrue(tracer.ops[1].inputs[0] === sum && tracer.ops[1].output === act)
        // Optional operands keep their slot: a convolution without bias reads (x, weight, nil).
        XCTAssertEqual(tracer.ops[2].inputs.count, 3)
        XCTAssertTrue(tracer.ops[2].inputs[0] === act && tracer.ops[2].inputs[1] === w && tracer.ops[2].inputs[2] == nil)
        XCTAssertTrue(tracer.ops[2].output === conv)
    }

    func testACompositeRecordsItselfAndNotItsParts() {
        let x = Tensor((0..<6).map(Float.init), shape: [2, 3])
        let tracer = OpTracer()
        let m = OpTrace.run(tracer) { x.mean(axes: [1]) }
        XCTAssertEqual(tracer.ops.map(\.kind), [.mean(axes: [1], keepDims: false)])
        XCTAssertTrue(tracer.ops[0].inputs[0] === x && tracer.ops[0].output === m)
        // After the composite, its parts' ops are recorded again.
        let s = OpTrace.run(tracer) { x.sum(axes: [0]) * 2 }
        XCTAssertEqual(tracer.ops.map(\.kind), [.mean(axes: [1], keepDims: false), .sum(axes: [0], keepDims: false), .mulScalar(2)])
        XCTAssertEqual(s.scalars, [6, 10, 14])
    }

    func testTracingObservesWithoutChangingResultsOrTheTape() {
        let x = Tensor([0.5, -1, 2, -3, 4, 0.25], shape: [2, 3], requiresGrad: true)
        func f() -> Tensor { ((x * x).gelu().softmax(axis: 1) + x.clamp(min: -1, max: 1)).sum() }
        let plain = f()
        let tracer = OpTracer()
        let traced = OpTrace.run(tracer) { f() }
        XCTAssertEqual(traced.scalars, plain.scalars)
        XCTAssertEqual(traced.gradFnName, plain.gradFnName)
        XCTAssertEqual(tracer.ops.map(\.kind), [.mul, .gelu(tanhApproximation: false), .softmax(axis: 1),
                                                .clamp(min: -1, max: 1), .add, .sum(axes: [0, 1], keepDims: false)])
        traced.backward()
        let g1 = x.grad!.scalars
        x.zeroGrad()
        plain.backward()
        XCTAssertEqual(x.grad!.scalars, g1)
        // Outside `run` nothing is recorded.
        _ = f()
        XCTAssertEqual(tracer.ops.count, 6)
        XCTAssertFalse(OpTrace.isTracing)
    }

    func testBatchNormIsTracedInInferenceOnlyWithItsOptionalOperandsInPlace() {
        let x = Tensor((0..<8).map(Float.init), shape: [1, 2, 2, 2])
        let mean = Tensor([1, 2], shape: [2]), variance = Tensor([1, 4], shape: [2])
        let tracer = OpTracer()
        OpTrace.run(tracer) {
            _ = batchNorm2d(x, weight: nil, bias: nil, runningMean: mean, runningVar: variance, training: true, eps: 1e-3)
        }
        XCTAssertTrue(tracer.ops.isEmpty)
        OpTrace.run(tracer) {
            _ = batchNorm2d(x, weight: nil, bias: nil, runningMean: mean, runningVar: variance, training: false, eps: 1e-3)
        }
        XCTAssertEqual(tracer.ops.map(\.kind), [.batchNorm(epsilon: 1e-3)])
        let inputs = tracer.ops[0].inputs
        XCTAssertEqual(inputs.count, 5)
        XCTAssertTrue(inputs[0] === x && inputs[1] == nil && inputs[2] == nil && inputs[3] === mean && inputs[4] === variance)
    }
}
