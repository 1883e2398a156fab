import XCTest
import FinchTensor
@testable import FinchNN

/// `ForwardFLOPs` against counts made by hand (and, for a zoo model, by PyTorch forward hooks), so the
/// GFLOP/s `finch bench --model` prints rest on the work the model really does.
final class ForwardFLOPsTests: XCTestCase {
    func testConvolutionsAndLinearOfATinyNetworkAreCountedAsByHand() {
        let net = Sequential([
            Conv2d(3, 4, kernelSize: 3),                       // 8×8 → 4×8×8, 3·3·3 taps each
            Activation(.relu),
            Conv2d(4, 4, kernelSize: 3, stride: 2, groups: 4), // depthwise, 8×8 → 4×4×4, 9 taps each
            GlobalAvgPool(),
            Linear(4, 3),
        ])
        XCTAssertTrue(net.isTraining)
        let f = ForwardFLOPs(counting: net, inputShape: [3, 8, 8])
        XCTAssertEqual(f.convolution, 2 * (4 * 8 * 8 * 27 + 4 * 4 * 4 * 9))   // 14976
        XCTAssertEqual(f.matmul, 2 * 3 * 4)
        XCTAssertEqual(f.total, 15000)
        XCTAssertEqual(f.trainingStep, 45000)
        XCTAssertTrue(net.isTraining, "counting runs in eval mode and restores the training mode")
    }

    /// Attention's two products per head count beside its projections; a trace of several images is
    /// divided back to one.
    func testAttentionProductsCountPerHeadAndPerImage() {
        let attn = Attention(8, numHeads: 2)
        let tracer = OpTracer()
        _ = OpTrace.run(tracer) { noGrad { attn(Tensor(zeros: [3, 5, 8])) } }
        let f = ForwardFLOPs(tracing: tracer.ops, batch: 3)
        let qkv = 5 * 24 * 8, scores = 2 * 5 * 5 * 4, mix = 2 * 5 * 4 * 5, proj = 5 * 8 * 8
        XCTAssertEqual(f.matmul, 2 * (qkv + scores + mix + proj))   // 3360
        XCTAssertEqual(f.convolution, 0)
    }

    /// timm's mobilenetv3_small_100 at 64 px, MACs summed by forward hooks on every nn.Conv2d and
    /// nn.Linear in PyTorch 2.15 + timm 1.0.31 (out.numel() × weight[0].numel(), × in_features).
    func testZooModelMatchesPyTorchHookCount() throws {
        let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 1000)
        let f = ForwardFLOPs(counting: model, inputShape: [3, 64, 64])
        XCTAssertEqual(f.convolution, 2 * 5_492_480)
        XCTAssertEqual(f.matmul, 2 * 1_024_000)
    }
}
