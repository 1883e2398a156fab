import XCTest
@testable import FinchTensor

/// Which 1×1 convolutions the small-plane kernel takes on AVX-512 (SmallPlanePointwiseConv.avx512Takes):
/// the rule on the zoo's shapes, the kernel declining the shapes it leaves, and those shapes then
/// giving the column path's result bit for bit.
final class SmallPlanePointwiseRoutingTests: XCTestCase {
    private func geometry(n: Int = 32, c: Int, cout: Int, side: Int) -> ConvGeometry {
        ConvGeometry(input: [n, c, side, side], weight: [cout, c, 1, 1], stride: (1, 1), padding: .zero,
                     dilation: (1, 1), groups: 1, op: "test")
    }

    func testAVX512RuleOnZooShapes() {
        // Taken: planes of at most 64 pixels, any width where the plane fills whole vectors; narrow
        // layers (≤ 2¹⁵ weights) on larger planes (MobileNetV3-Small's 14×14 layers).
        for (c, cout, side) in [(576, 96, 7), (96, 576, 7), (320, 80, 4), (64, 256, 8), (1024, 256, 8),
                                (2048, 512, 4), (512, 2048, 4), (1152, 320, 7), (40, 240, 14), (288, 48, 14),
                                (8, 8, 9)] {
            XCTAssertTrue(SmallPlanePointwiseConv.avx512Takes(geometry(c: c, cout: cout, side: side)),
                          "\(c)→\(cout) at \(side)×\(side)")
        }
        // Left to the column path: wider layers on 14×14 planes (ResNet50's layer3, EfficientNet-Lite's
        // stage 5 at 224 px), and ResNet50's 2²⁰-weight layers on 7×7 (49 of 64 lanes).
        for (c, cout, side) in [(1024, 256, 14), (256, 1024, 14), (672, 112, 14), (80, 480, 14), (200, 200, 9),
                                (2048, 512, 7), (512, 2048, 7)] {
            XCTAssertFalse(SmallPlanePointwiseConv.avx512Takes(geometry(c: c, cout: cout, side: side)),
                           "\(c)→\(cout) at \(side)×\(side)")
        }
    }

    func testDeclinedShapesRunTheColumnPathBitForBit() {
        guard KernelPath.best >= .avx512 else { return }
        defer { SmallPlanePointwiseConv.allowWide = true }
        var rng = RandomGenerator(seed: 7)
        // 14×14 and 9×9 with more than 2¹⁵ weights (declined); 8×8, and 14×14 with few weights (taken).
        for (k, (n, c, cout, side, taken)) in [(2, 192, 180, 14, false), (1, 200, 170, 9, false),
                                               (2, 17, 11, 8, true), (2, 24, 13, 14, true)].enumerated() {
            let x = Tensor.normal([n, c, side, side], using: &rng)
            let w = Tensor.normal([cout, c, 1, 1], using: &rng)
            let b = Tensor.normal([cout], using: &rng)
            let g = geometry(n: n, c: c, cout: cout, side: side)
            XCTAssertTrue(SmallPlanePointwiseConv.applies(to: g), "case \(k)")
            let (kernelRan, routed): (Bool, [Float]) = KernelPath.with(.avx512) {
                SmallPlanePointwiseConv.allowWide = true
                let out = Tensor(uninitializedShape: [n, cout, side, side])
                let ran = SmallPlanePointwiseConv.forward(x: x.basePointer, weight: w.basePointer, bias: b.basePointer,
                                                          out: out.basePointer, g)
                return (ran, conv2d(x, weight: w, bias: b).scalars)
            }
            XCTAssertEqual(kernelRan, taken, "case \(k): kernel taken")
            let column: [Float] = KernelPath.with(.avx512) {
                SmallPlanePointwiseConv.allowWide = false
                return conv2d(x, weight: w, bias: b).scalars
            }
            SmallPlanePointwiseConv.allowWide = true
            if !taken {
                XCTAssertEqual(routed.count, column.count)
                if let i = routed.indices.first(where: { routed[$0].bitPattern != column[$0].bitPattern }) {
                    XCTFail("case \(k): [\(i)] \(routed[i]) against the column path's \(column[i])")
                }
            } else {
                XCTAssertEqual(routed.count, column.count)
                for i in routed.indices { XCTAssertEqual(routed[i], column[i], accuracy: 1e-4 * (1 + abs(column[i]))) }
            }
        }
    }
}
