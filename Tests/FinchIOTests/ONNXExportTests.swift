import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO
import FinchTestSupport

/// A network touching every op family the zoo uses, with timm-like names.
final class MixedNet: Module {
    let convStem = Conv2d(3, 8, kernelSize: 3, stride: 2, padding: .same, bias: false)
    let bn1 = BatchNorm2d(8, activation: .hardswish)
    let convDw = Conv2d(8, 8, kernelSize: 3, groups: 8, bias: false)
    let bn2 = BatchNorm2d(8, activation: .relu6)
    let seReduce = Conv2d(8, 4, kernelSize: 1)
    let seExpand = Conv2d(4, 8, kernelSize: 1)
    let qkv = Linear(8, 24)
    let norm = LayerNorm(8)
    let classifier = Linear(8, 5)

    override init() {
        super.init()
        register("conv_stem", convStem); register("bn1", bn1); register("conv_dw", convDw); register("bn2", bn2)
        register("se_reduce", seReduce); register("se_expand", seExpand); register("qkv", qkv); register("norm", norm)
        register("classifier", classifier)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = bn1(convStem(x))
        y = maxPool2d(y, kernel: (3, 3), stride: (1, 1), padding: (1, 1))
        y = bn2(convDw(y))
        let s = seExpand(seReduce(y.mean(axes: [2, 3], keepDim: true)).silu()).hardsigmoid()
        y = y * s
        y = avgPool2d(y, kernel: (2, 2))
        // Tokens [N, HW, C] → single-head attention → back.
        let n = y.shape[0], c = y.shape[1], hw = y.shape[2] * y.shape[3]
        let t = y.reshaped(n, c, hw).permuted(0, 2, 1)
        let parts = qkv(t).split(sizes: [c, c, c], axis: 2)
        let att = (parts[0].matmul(parts[1].transposed()) * (1 / Float(c).squareRoot())).softmax(axis: -1)
        let z = norm(t + att.matmul(parts[2])).gelu()
        let pooled = z.mean(axes: [1])
        return classifier(pooled.sigmoid() * pooled.tanh() + pooled.relu().clamp(max: 2) - (pooled * 0.5).exp())
    }
}

final class ONNXExportTests: XCTestCase {
    func testExportRunsInONNXRuntimeWithTheSameLogits() throws {
        guard try PythonTools.available(["onnxruntime", "onnx", "safetensors", "numpy"]) else { return }
        let model = MixedNet()
        try ProceduralWeights.fill(model)
        model.eval()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let x = ProceduralWeights.input(batch: 3, resolution: 15)
        let expected = noGrad { model(x) }
        let input = dir.appendingPathComponent("in.safetensors")
        try writeSafeTensors([("input", .float32(x))], to: input)

        for (fold, half) in [(false, false), (true, false), (false, true)] {
            let exporter = ONNXExporter(foldBatchNorm: fold, halfPrecisionWeights: half, metadata: ["classes": "[\"a\",\"b\",\"c\",\"d\",\"e\"]"])
            let proto = try exporter.export(model, inputShape: [3, 15, 15], numClasses: 5)
            let url = dir.appendingPathComponent("m-\(fold)-\(half).onnx")
            try ONNXExporter.write(proto, to: url)
            let out = dir.appendingPathComponent("out-\(fold)-\(half).safetensors")
            let r = PythonTools.run([PythonTools.tools.appendingPathComponent("onnx_run.py").path, url.path, input.path, out.path])
            XCTAssertEqual(r.status, 0, r.output)
            guard r.status == 0 else { continue }
            let got = try SafeTensorsFile(contentsOf: out).tensor("logits")
            XCTAssertEqual(got.shape, [3, 5])
            print("onnx fold=\(fold) half=\(half): \(r.output.trimmingCharacters(in: .whitespacesAndNewlines)) max abs diff \(zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max()!)")
            let maxDiff = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(maxDiff, half ? 2e-2 : 1e-4, "fold=\(fold) half=\(half): max |Δ| \(maxDiff)")
            XCTAssertEqual(got.argmax(axis: 1), expected.argmax(axis: 1))
            if fold { XCTAssertFalse(proto.graph.node.contains { $0.opType == "BatchNormalization" }) }
            XCTAssertEqual(proto.graph.input[0].type.tensorType.shape.dim[0].dimParam, "N")
        }
    }

    func testWeightsAreNamedInitializersAndMetadataIsKept() throws {
        let model = MixedNet()
        let proto = try ONNXExporter(metadata: ["model": "mixednet"]).export(model, inputShape: [3, 15, 15], numClasses: 5)
        let names = Set(proto.graph.initializer.map(\.name))
        for n in ["conv_stem.weight", "bn1.running_var", "classifier.weight", "norm.bias"] { XCTAssertTrue(names.contains(n), n) }
        XCTAssertEqual(proto.metadataProps.first { $0.key == "model" }?.value, "mixednet")
        XCTAssertEqual(proto.opsetImport.first?.version, 17)
        XCTAssertEqual(proto.graph.output.map(\.name), ["logits"])
        XCTAssertTrue(model.isTraining, "export restores the training mode")
    }
}
