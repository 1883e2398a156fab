import XCTest
@testable import FinchTensor

/// Winograd on output planes below `WinogradConv.minimumPlane` (ResNet's last stage: 4×4 at 128 px,
/// 7×7 at 224): taken only where the cost model says it needs fewer multiplies than im2col, and
/// then forward and both gradients through the Winograd kernels, checked against Float64.
final class WinogradSmallPlaneTests: XCTestCase {
    private func geometry(n: Int, c: Int, side: Int, stride: Int = 1) -> ConvGeometry {
        ConvGeometry(input: [n, c, side * stride, side * stride], weight: [c, c, 3, 3], stride: (stride, stride),
                     padding: Padding2d(1, 1), dilation: (1, 1), groups: 1, op: "test")
    }

    func testRuleOnResNetShapes() {
        // Batch 32: Winograd's 4 or 16 tiles per sample outweigh transforming the weights.
        for (c, side) in [(512, 4), (512, 7), (256, 4), (64, 4)] {
            XCTAssertTrue(WinogradConv.applies(to: geometry(n: 32, c: c, side: side)), "\(c) channels, \(side)×\(side), batch 32")
        }
        // Batch 1 (deployment) on both, batch 8 on 4×4: too few tiles per weight, im2col stays.
        for (n, side) in [(1, 4), (1, 7), (8, 4)] {
            XCTAssertFalse(WinogradConv.applies(to: geometry(n: n, c: 512, side: side)), "\(side)×\(side), batch \(n)")
        }
        // Batch 8 on 7×7 (the parity files at 224 px): F(2×2)'s 16 tiles per sample, 3072 multiplies
        // per weight against im2col's 3528.
        XCTAssertTrue(WinogradConv.applies(to: geometry(n: 8, c: 512, side: 7)))
        XCTAssertEqual(WinogradConv.tiles(for: geometry(n: 8, c: 512, side: 7)), .two)
        // Planes of 64 pixels and more take Winograd at any batch, as before the rule.
        XCTAssertTrue(WinogradConv.applies(to: geometry(n: 1, c: 256, side: 8)))
        // Stride 2 never does.
        XCTAssertFalse(WinogradConv.applies(to: geometry(n: 32, c: 512, side: 4, stride: 2)))
        // The tile on these planes is F(2×2), also where F(4×4)'s count alone would win (7×7 at
        // batch 32): its 36 transformed weight matrices cost memory and measured no faster.
        XCTAssertEqual(WinogradConv.tiles(for: geometry(n: 32, c: 512, side: 4)), .two)
        XCTAssertEqual(WinogradConv.tiles(for: geometry(n: 32, c: 512, side: 7)), .two)
        XCTAssertEqual(WinogradConv.tiles(for: geometry(n: 32, c: 512, side: 8)),
                       KernelPath.active >= .avx2 && WinogradConv.largeTiles ? .four : .two)
    }

    /// conv2d on a 4×4 and a 7×7 plane at batch 32 gives WinogradConv's forward bit for bit, and its
    /// output, input gradient and weight gradient agree with Float64 sums.
    func testSmallPlanesRunWinogradAndAgreeWithFloat64() {
        for (k, side) in [4, 7].enumerated() {
            let (n, c, cout) = (32, 16, 16)
            let g = ConvGeometry(input: [n, c, side, side], weight: [cout, c, 3, 3], stride: (1, 1),
                                 padding: Padding2d(1, 1), dilation: (1, 1), groups: 1, op: "test")
            XCTAssertTrue(WinogradConv.applies(to: g))
            var rng = TestRNG(310 + UInt64(k))
            let x = rng.tensor([n, c, side, side]), w = rng.tensor([cout, c, 3, 3])
            let r = rng.tensor([n, cout, side, side], requiresGrad: false)
            let y = conv2d(x, weight: w, padding: (1, 1))
            (y * r).sum().backward()

            let direct = Tensor(uninitializedShape: [n, cout, side, side])
            WinogradConv.forward(x: x.basePointer, weight: w.basePointer, bias: nil, out: direct.basePointer, g)
            let ys = y.scalars, ds = direct.scalars
            if let i = ys.indices.first(where: { ys[$0].bitPattern != ds[$0].bitPattern }) {
                XCTFail("\(side)×\(side): conv2d [\(i)] \(ys[i]) is not WinogradConv's \(ds[i])")
            }

            let xs = x.scalars, ws = w.scalars, rs = r.scalars
            var yRef = [Double](repeating: 0, count: n * cout * side * side)
            var dxRef = [Double](repeating: 0, count: xs.count), dwRef = [Double](repeating: 0, count: ws.count)
            for s in 0..<n { for co in 0..<cout { for ci in 0..<c { for i in 0..<3 { for j in 0..<3 {
                let wi = ((co * c + ci) * 3 + i) * 3 + j
                for oy in 0..<side where (0..<side).contains(oy + i - 1) {
                    for ox in 0..<side where (0..<side).contains(ox + j - 1) {
                        let xi = ((s * c + ci) * side + oy + i - 1) * side + ox + j - 1
                        let yi = ((s * cout + co) * side + oy) * side + ox
                        yRef[yi] += Double(ws[wi]) * Double(xs[xi])
                        dxRef[xi] += Double(ws[wi]) * Double(rs[yi])
                        dwRef[wi] += Double(xs[xi]) * Double(rs[yi])
                    }
                }
            } } } } }
            // Sums of 144 (outputs, input gradients) and 512–1568 (weight gradients) products of
            // uniform(−1, 1) values: Winograd's rounding stays within a few 10⁻⁶ of their scale.
            func check(_ got: [Float], _ want: [Double], _ what: String, tolerance: Double) {
                XCTAssertEqual(got.count, want.count)
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? .infinity
                XCTAssertLessThan(worst, tolerance, "\(side)×\(side) \(what)")
            }
            check(ys, yRef, "output", tolerance: 2e-5)
            check(x.grad!.scalars, dxRef, "input gradient", tolerance: 2e-5)
            check(w.grad!.scalars, dwRef, "weight gradient", tolerance: 1e-4)
        }
    }
}
