import XCTest
@testable import FinchTensor

/// Winograd convolutions at ResNet18's training shapes (batch 2: 64 channels on 24×24, 128 on 12×12),
/// forward, input gradient and weight gradient, against the Float64 definition, with each tile and
/// on 1, 2 and 3 threads. At batch 2 these shapes take the per-thread blocks at one thread and the
/// chunks with split GEMMs and parallel transforms at two and three, so a tile, sample or channel
/// range summed twice or missed on any of them shows as an error of the order of the outputs
/// themselves, where rounding stays near 10⁻⁵ of their scale.
final class WinogradThreadsTests: XCTestCase {
    /// y = conv(x, w) with padding 1, dx and dw for the loss Σ y·r, all in Float64.
    private func reference(_ x: [Float], _ w: [Float], _ r: [Float], n: Int, c: Int, cout: Int, side: Int)
        -> (y: [Double], dx: [Double], dw: [Double]) {
        let hw = side * side
        var y = [Double](repeating: 0, count: n * cout * hw), dx = [Double](repeating: 0, count: n * c * hw)
        var dw = [Double](repeating: 0, count: cout * c * 9)
        let xd = x.map(Double.init), wd = w.map(Double.init), rd = r.map(Double.init)
        xd.withUnsafeBufferPointer { xp in wd.withUnsafeBufferPointer { wp in rd.withUnsafeBufferPointer { rp in
            y.withUnsafeMutableBufferPointer { yp in dx.withUnsafeMutableBufferPointer { dxp in dw.withUnsafeMutableBufferPointer { dwp in
                for s in 0..<n { for co in 0..<cout { for ci in 0..<c { for i in 0..<3 { for j in 0..<3 {
                    let wi = ((co * c + ci) * 3 + i) * 3 + j, weight = wp[wi]
                    let xBase = (s * c + ci) * hw, yBase = (s * cout + co) * hw
                    var acc = 0.0
                    for oy in Swift.max(0, 1 - i)..<Swift.min(side, side + 1 - i) {
                        let xRow = xBase + (oy + i - 1) * side + j - 1, yRow = yBase + oy * side
                        for ox in Swift.max(0, 1 - j)..<Swift.min(side, side + 1 - j) {
                            yp[yRow + ox] += weight * xp[xRow + ox]
                            dxp[xRow + ox] += weight * rp[yRow + ox]
                            acc += rp[yRow + ox] * xp[xRow + ox]
                        }
                    }
                    dwp[wi] += acc
                } } } } }
            } } }
        } } }
        return (y, dx, dw)
    }

    func testResNet18ShapesOnEachTileAndThreadCount() {
        let saved = (Parallel.threads, WinogradConv.largeTiles, WinogradConv.alwaysLargeTiles)
        defer {
            Parallel.setThreads(saved.0)
            (WinogradConv.largeTiles, WinogradConv.alwaysLargeTiles) = (saved.1, saved.2)
        }
        let wide = Parallel.kernelISA == "avx512"
        for (k, (c, side)) in [(64, 24), (128, 12)].enumerated() {
            let n = 2
            var rng = TestRNG(300 + UInt64(k))
            let x = rng.tensor([n, c, side, side]), w = rng.tensor([c, c, 3, 3])
            let r = rng.tensor([n, c, side, side], requiresGrad: false)
            let ref = reference(x.scalars, w.scalars, r.scalars, n: n, c: c, cout: c, side: side)
            let g = ConvGeometry(input: [n, c, side, side], weight: [c, c, 3, 3], stride: (1, 1), padding: Padding2d(1, 1),
                                 dilation: (1, 1), groups: 1, op: "test")
            XCTAssertTrue(WinogradConv.applies(to: g))
            // F(2×2), the cost model's choice, and F(4×4) forced (AVX-512 only).
            let tiles: [(String, Bool, Bool)] = [("F(2×2)", false, false), ("chosen", true, false)]
                + (wide ? [("F(4×4)", true, true)] : [])
            for (tile, large, always) in tiles {
                (WinogradConv.largeTiles, WinogradConv.alwaysLargeTiles) = (large, always)
                // F(4×4)'s transforms scale by up to 8 and 1/30: about 8× F(2×2)'s rounding.
                let bound = WinogradConv.tiles(for: g) == .four ? 1e-4 : 2e-5
                for threads in 1...3 {
                    Parallel.setThreads(threads)
                    x.zeroGrad()
                    w.zeroGrad()
                    let y = conv2d(x, weight: w, padding: (1, 1))
                    (y * r).sum().backward()
                    for (what, got, exact) in [("y", y.scalars, ref.y), ("dx", x.grad!.scalars, ref.dx),
                                               ("dw", w.grad!.scalars, ref.dw)] {
                        let scale = exact.map(Swift.abs).max()!
                        let error = zip(got, exact).map { Swift.abs(Double($0) - $1) }.max()! / scale
                        XCTAssertLessThan(error, bound, "\(c) channels \(side)×\(side), \(tile), \(threads) threads: \(what) off by \(error) of its scale")
                    }
                }
            }
        }
    }
}
