import XCTest
import Foundation
@testable import FinchTensor
@testable import FinchNN
@testable import FinchIO

// Not part of the build: copy into Tests/FinchParityTests to run (it reaches internals through
// @testable imports), then
//     FINCH_TRACE_OUT=/tmp/finch.safetensors [FINCH_TRACE_RESET=REF [FINCH_TRACE_RESET_AT=TAP]] \
//     FINCH_KERNELS=avx2 OPENBLAS_CORETYPE=Zen FINCH_NUM_THREADS=3 \
//     swift test --disable-swift-testing --skip-build --filter MobileViTTraceTests
// and compare with trace_module_grads.py (Benchmarks/AccumulationAccuracy.md, "Tracing").

/// Module outputs and their gradients of mobilevit_xxs_64_5's train step (the fixture's weights,
/// input and labels), under timm's module names, for trace_module_grads.py --compare.
final class MobileViTTraceTests: XCTestCase {
    var fwd: [String: Tensor] = [:], grads: [String: Tensor] = [:]
    /// With FINCH_TRACE_RESET (a trace_module_grads.py reference), each tap passes on the float64
    /// gradient rounded to Float instead of its own: what arrives at a tap is then one segment's error.
    var reset: SafeTensorsFile?
    /// FINCH_TRACE_RESET_AT: reset at that tap only.
    let resetAt = ProcessInfo.processInfo.environment["FINCH_TRACE_RESET_AT"]

    func tap(_ name: String, _ x: Tensor) -> Tensor {
        fwd[name] = x.detach().copy()
        return record(x.detach().copy(), "tap", [x], nil) { [unowned self] g in
            self.grads[name] = g.copy()
            if let r = self.reset, self.resetAt == nil || self.resetAt == name, r.contains("grad.\(name)"), let t = try? r.tensor("grad.\(name)") {
                return [t.reshaped(g.shape)]
            }
            return [g]
        }
    }

    /// A ConvNormAct with its convolution's output tapped too (bn(conv(x)), as convBatchNorm runs it in training).
    func cna(_ m: ConvNormAct, _ name: String, _ x: Tensor) -> Tensor {
        tap(name, m.bn(tap("\(name).conv", m.conv(x))))
    }

    func bottleneck(_ b: InvertedBottleneck, _ name: String, _ x: Tensor) -> Tensor {
        let h1 = cna(b.conv1, "\(name).conv1_1x1", x)
        let h = cna(b.conv2, "\(name).conv2_kxk", h1)
        if b.hasShortcut { return tap(name, b.conv3(h, adding: x)) }
        return tap(name, cna(b.conv3, "\(name).conv3_1x1", h))
    }

    func transformer(_ t: TransformerBlock, _ name: String, _ x: Tensor) -> Tensor {
        let n1 = tap("\(name).norm1", t.norm1(x))
        let at = t.attn
        let (b, n, c) = (n1.shape[0], n1.shape[1], n1.shape[2])
        let parts = tap("\(name).attn.qkv", at.qkv(n1)).reshaped([b, n, 3, at.numHeads, at.headDim]).permuted(2, 0, 3, 1, 4)
        let q = parts.narrowed(axis: 0, start: 0, length: 1).squeezed(axis: 0)
        let k = parts.narrowed(axis: 0, start: 1, length: 1).squeezed(axis: 0)
        let v = parts.narrowed(axis: 0, start: 2, length: 1).squeezed(axis: 0)
        let scale = 1 / Float(at.headDim).squareRoot()
        let weights = (q * scale).matmul(k.transposed()).softmax(axis: -1)
        let heads = weights.matmul(v).transposed(1, 2).reshaped([b, n, c])
        let a = tap("\(name).attn", tap("\(name).attn.proj", at.proj(heads)))
        let h = x + a
        let n2 = tap("\(name).norm2", t.norm2(h))
        let f1 = tap("\(name).mlp.fc1", t.mlp.fc1(n2))
        let act = tap("\(name).mlp.act", Activation.apply(t.mlp.activation, f1))
        let m = tap("\(name).mlp", tap("\(name).mlp.fc2", t.mlp.fc2(act)))
        return tap(name, h + m)
    }

    func mobileViT(_ blk: MobileViTBlock, _ name: String, _ x: Tensor) -> Tensor {
        var y = tap("\(name).conv_1x1", blk.conv1x1(cna(blk.convKxK, "\(name).conv_kxk", x)))
        let (b, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let p = blk.patch
        ensure(h % p == 0 && w % p == 0, "trace: feature map \(h)×\(w) is not a multiple of the patch")
        let nh = h / p, nw = w / p
        var tokens = y.reshaped([b, c, nh, p, nw, p]).permuted(0, 3, 5, 2, 4, 1).reshaped([b * p * p, nh * nw, c])
        for (i, t) in blk.transformer.enumerated() { tokens = transformer(t, "\(name).transformer.\(i)", tokens) }
        tokens = tap("\(name).transformer", tokens)
        tokens = tap("\(name).norm", blk.norm(tokens))
        y = tokens.reshaped([b, p, p, nh, nw, c]).permuted(0, 5, 3, 1, 4, 2).reshaped([b, c, h, w])
        let proj = cna(blk.convProj, "\(name).conv_proj", y)
        return tap(name, cna(blk.convFusion, "\(name).conv_fusion", Tensor.concat([x, proj], axis: 1)))
    }

    func testTrace() throws {
        guard let out = ProcessInfo.processInfo.environment["FINCH_TRACE_OUT"] else { return }
        if let r = ProcessInfo.processInfo.environment["FINCH_TRACE_RESET"] {
            reset = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: r))
        }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/parity/mobilevit_xxs_64_5.safetensors").standardized
        let labels = try SafeTensorsFile(contentsOf: url).int64s("target").map { Int($0) }
        let input = ProceduralWeights.input(batch: 2, resolution: 64)
        let model = try XCTUnwrap(try ModelRegistry.create("mobilevit_xxs", numClasses: 5) as? MobileViT)
        try ProceduralWeights.fill(model)
        model.train()
        var h = tap("stem", model.stem(input))
        for (s, stage) in model.stages.enumerated() {
            for (bi, blk) in stage.layers.enumerated() {
                let name = "stages.\(s).\(bi)"
                if let ib = blk as? InvertedBottleneck { h = bottleneck(ib, name, h) }
                else if let mv = blk as? MobileViTBlock { h = mobileViT(mv, name, h) }
            }
            h = tap("stages.\(s)", h)
        }
        h = cna(model.finalConv, "final_conv", h)
        let pooled = adaptiveAvgPool2d(h, outputSize: (1, 1)).flattened(from: 1)
        let logits = tap("head.fc", model.fc(pooled))
        Loss.crossEntropy(logits, labels: labels).backward()
        var all: [String: Tensor] = [:]
        for (k, v) in fwd { all["fwd.\(k)"] = v }
        for (k, v) in grads { all["grad.\(k)"] = v }
        for (k, p) in model.namedParameters() { if let g = p.grad { all["pgrad.\(k)"] = g } }
        try writeSafeTensors(all, to: URL(fileURLWithPath: out))
        print("trace: \(all.count) tensors to \(out)")
    }
}
