import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO
import FinchTestSupport

/// A network that runs every traced op kind (`TracedOpKind`), including the optional operands
/// left out (a batch norm without weight and bias, a layer norm without them, a one-sided clamp).
final class EveryOpNet: Module {
    let conv = Conv2d(3, 6, kernelSize: 3, padding: .same)
    let ln = LayerNorm(6)
    let head = Tensor((0..<60).map { Float($0 % 7) / 10 }, shape: [12, 5])
    let runningMean = Tensor([0.1, 0.2, 0, -0.1, 0.3, 0], shape: [6])
    let runningVar = Tensor([1, 2, 0.5, 1, 1, 3], shape: [6])

    override init() { super.init(); register("conv", conv); register("ln", ln) }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv(x)                                                                  // [N,6,16,16]
        y = batchNorm2d(y, weight: nil, bias: nil, runningMean: runningMean, runningVar: runningVar, training: false, eps: 1e-3)
        y = y.relu6() + y.leakyRelu(0.2) - y.hardswish() * y.hardsigmoid() + y.relu()
        y = y.gelu(approximate: .tanh) + y.gelu() + y.silu()
        y = interpolateBilinear(y, size: (20, 20))
        y = y.padded([(1, 2), (0, 1)], value: 0.5)
        y = maxPool2d(y, kernel: (2, 2), stride: (2, 2), ceilMode: true)
        y = avgPool2d(y, kernel: (3, 3), stride: (1, 1), padding: (1, 1), countIncludePad: false)
        let g = adaptiveAvgPool2d(y, outputSize: (1, 1))
        y = y / (g.abs() + 1)
        y = y.sliced(axis: 2, start: 1, end: 9, step: 2)
        y = y.indexSelect(axis: 3, indices: [0, 2, 4, 6])
        let n = y.shape[0]
        var t = y.reshaped(n, 6, -1).permuted(0, 2, 1).contiguous()                      // [N,16,6]
        t = ln(t)
        t = layerNorm(t, normalizedShape: [6], weight: nil, bias: nil, eps: 1e-6)
        t = Tensor.concat([t, t.tanh()], axis: 2)                                        // [N,16,12]
        let m = t.max(axes: [1], keepDim: true)
        t = Tensor.maximum(t, m.expanded(to: t.shape) * 0.1) + Tensor.minimum(t, t.sigmoid())
        t = (2 - t).exp().log() + (3 / (t.abs() + 1)) + t.pow(2).sqrt() + (t.abs() + 1).rsqrt() + (-t).clamp(min: -1)
        t = t + t.abs().pow(1.5) + (t.abs() + 1).pow(t.sigmoid()) + t.clamp(min: -0.5, max: 0.5) - t / (t.abs() + 2)
        let s = t.sum(axes: [1], keepDim: false) + t.mean(axes: [1])                    // [N,12]
        let h = s.matmul(head)
        return h.softmax(axis: -1) + h.logSoftmax(axis: 1) + h
    }
}

final class ONNXOpCoverageTests: XCTestCase {
    /// Every case of `TracedOpKind`; a new case belongs here and in `EveryOpNet`.
    static let everyKind: Set<String> = [
        "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log", "sqrt", "rsqrt", "abs",
        "addScalar", "mulScalar", "scalarSub", "scalarDiv", "powScalar", "clamp",
        "relu", "relu6", "leakyRelu", "sigmoid", "tanh", "hardSigmoid", "hardSwish", "silu", "gelu", "matmul",
        "conv2d", "maxPool2d", "avgPool2d", "globalAvgPool2d", "batchNorm", "layerNorm", "contiguous",
        "reshape", "permute", "expand", "slice", "concat", "pad", "sum", "mean", "amax", "softmax", "logSoftmax",
        "indexSelect", "resizeBilinear",
    ]

    func testEveryTracedOpKindIsLoweredAndAgreesWithONNXRuntime() throws {
        let model = EveryOpNet()
        try ProceduralWeights.fill(model)
        model.eval()
        let trace = try ModelTrace(recording: model, inputShape: [3, 16, 16], numClasses: 5)
        XCTAssertEqual(Set(trace.ops.map(\.kind.caseName)), Self.everyKind)
        let proto = try ONNXExporter().graph(from: trace)
        // The chains for ops opset 17 lacks, and the rename of a dense copy.
        let types = proto.graph.node.map(\.opType)
        XCTAssertTrue(types.contains("Erf") && types.contains("Reciprocal"))
        XCTAssertFalse(types.contains("Identity"))

        guard try PythonTools.available(["onnxruntime", "onnx", "safetensors", "numpy"]) else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-onnx-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = ProceduralWeights.input(batch: 3, resolution: 16)
        let expected = noGrad { model(x) }
        // The images must reach the logits, or the comparison would not see the ops on their path.
        XCTAssertNotEqual(Array(expected.scalars[0..<5]), Array(expected.scalars[5..<10]))
        let input = dir.appendingPathComponent("in.safetensors"), out = dir.appendingPathComponent("out.safetensors")
        let url = dir.appendingPathComponent("every-op.onnx")
        try writeSafeTensors([("input", .float32(x))], to: input)
        try ONNXExporter.write(proto, to: url)
        let r = PythonTools.run([PythonTools.tools.appendingPathComponent("onnx_run.py").path, url.path, input.path, out.path])
        XCTAssertEqual(r.status, 0, r.output)
        guard r.status == 0 else { return }
        let got = try SafeTensorsFile(contentsOf: out).tensor("logits")
        XCTAssertEqual(got.shape, [3, 5])
        // The logits are sums over 16 tokens and reach the thousands: the bound is relative to them.
        let scale = max(1, expected.scalars.map { abs($0) }.max() ?? 0)
        let maxDiff = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        print("every-op net: max |Δ| \(maxDiff) for logits up to \(scale)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-5 * scale, "max |Δ| \(maxDiff) for logits up to \(scale)")
    }
}
