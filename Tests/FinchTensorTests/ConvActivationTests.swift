import Foundation
import XCTest
import CFinchKernels
@testable import FinchTensor

/// The bias, residual and activation a convolution path applies to each output plane as it
/// finishes it (`ConvKernels.forward(…, activation:, residual:)`, which evaluation's folded
/// Conv+BatchNorm uses), checked on every path against the Float64 convolution, plus the residual,
/// followed by the activation in Float64.
final class ConvActivationTests: XCTestCase {
    private struct Case {
        let name: String
        let input: [Int], weight: [Int]
        var stride = (1, 1), padding = Padding2d.zero, groups = 1, bias = true
        /// `ConvKernels.bandBudget` for the case (the default keeps small shapes out of the bands).
        var bandBudget = 1 << 18
        /// `WinogradConv.largeTiles` for the case.
        var largeTiles = true
        /// Which path the geometry must take, so a change of thresholds cannot silently skip one.
        let takes: (ConvGeometry) -> Bool
    }

    private static func reference(_ activation: FusedActivation, _ v: Double) -> Double {
        switch activation {
        case .identity: v
        case .relu: max(v, 0)
        case .relu6: min(max(v, 0), 6)
        case .hardswish: v * min(max(v + 3, 0), 6) / 6
        case .hardsigmoid: min(max(v + 3, 0), 6) / 6
        case .silu: v / (1 + Foundation.exp(-v))
        case .sigmoid: 1 / (1 + Foundation.exp(-v))
        }
    }

    private let cases: [Case] = [
        Case(name: "pointwise, one GEMM per sample", input: [2, 5, 16, 16], weight: [6, 5, 1, 1]) {
            $0.isPointwise && $0.hw >= ConvKernels.pointwiseDirectMinPlane
        },
        Case(name: "pointwise on small planes", input: [2, 5, 4, 4], weight: [19, 5, 1, 1], bias: false) {
            SmallPlanePointwiseConv.applies(to: $0)
        },
        // F(4×4) where the AVX-512 or AVX2 transforms are selected (the test sets `weightCost` to 0
        // so a batch of two takes it), else F(2×2); and F(2×2) on every path.
        Case(name: "Winograd F(4×4)", input: [2, 16, 8, 9], weight: [16, 16, 3, 3], padding: Padding2d(1, 1)) {
            WinogradConv.applies(to: $0)
                && (WinogradConv.tiles(for: $0) == .four) == (WinogradConv.allowWide && KernelPath.active >= .avx2)
        },
        Case(name: "Winograd F(2×2)", input: [2, 16, 8, 9], weight: [16, 16, 3, 3], padding: Padding2d(1, 1),
             largeTiles: false) { WinogradConv.applies(to: $0) && WinogradConv.tiles(for: $0) == .two },
        Case(name: "depthwise rows", input: [2, 4, 5, 20], weight: [4, 1, 3, 3], padding: Padding2d(1, 1),
             groups: 4) { $0.isDepthwise && !DepthwiseConvChannelTiles.applies(to: $0) },
        Case(name: "depthwise channel tiles", input: [2, 19, 6, 5], weight: [19, 1, 3, 3], stride: (2, 2),
             padding: Padding2d(1, 1), groups: 19) { $0.isDepthwise && DepthwiseConvChannelTiles.applies(to: $0) },
        Case(name: "few input channels", input: [2, 3, 7, 8], weight: [18, 3, 3, 3], stride: (2, 2),
             padding: Padding2d(1, 1)) { FewChannelConv.applies(to: $0) },
        Case(name: "im2col", input: [3, 5, 6, 6], weight: [4, 5, 5, 5], padding: Padding2d(2, 2)) {
            !$0.isPointwise && !WinogradConv.applies(to: $0) && !FewChannelConv.applies(to: $0)
        },
        Case(name: "im2col in bands of output rows", input: [3, 5, 13, 7], weight: [4, 5, 3, 3], stride: (2, 2),
             padding: Padding2d(1, 1), bandBudget: 300) { ConvKernels.bandRows($0) == 2 },
    ]

    func testEveryPathAppliesBiasAndActivation() {
        let native = String(cString: finch_kernels_isa())
        let savedBudget = ConvKernels.columnBudget, savedBand = ConvKernels.bandBudget, savedThreads = Parallel.threads
        let savedWeightCost = WinogradConv.weightCost
        Parallel.setThreads(2)
        WinogradConv.weightCost = 0
        defer {
            WinogradConv.weightCost = savedWeightCost
            WinogradConv.largeTiles = true
            _ = finch_kernels_use(native)
            ConvKernels.columnBudget = savedBudget
            ConvKernels.bandBudget = savedBand
            Parallel.setThreads(savedThreads)
            setWide(true)
        }
        let activations: [FusedActivation] = [.identity, .relu, .relu6, .hardswish, .hardsigmoid, .silu, .sigmoid]
        // The C kernels where the CPU has them, then the Swift ones; im2col both with several samples
        // per column chunk (scattered) and with one (written in place).
        for (isa, wide, budget) in [(native, true, savedBudget), ("generic", false, 1)] {
            XCTAssertEqual(finch_kernels_use(isa), 1)
            setWide(wide)
            ConvKernels.columnBudget = budget
            for (k, c) in cases.enumerated() {
                ConvKernels.bandBudget = c.bandBudget
                WinogradConv.largeTiles = c.largeTiles
                var rng = TestRNG(UInt64(40 + k))
                let x = rng.tensor(c.input), w = rng.tensor(c.weight)
                let b = c.bias ? rng.tensor([c.weight[0]]) : nil
                let g = ConvGeometry(input: c.input, weight: c.weight, stride: c.stride, padding: c.padding,
                                     dilation: (1, 1), groups: c.groups, op: "test")
                XCTAssertTrue(c.takes(g), "\(c.name): the geometry no longer takes this path")
                let conv = naiveConv2d(x, w, b, stride: c.stride, padding: c.padding, dilation: (1, 1),
                                       groups: c.groups)
                let shortcut = rng.tensor(conv.shape), cout = c.weight[0], plane = conv.values.count / (conv.shape[0] * cout)
                let mean = rng.tensor([cout]), scale = rng.tensor([cout], 0.5, 2), shift = rng.tensor([cout])
                for activation in activations {
                  // Activation only; BatchNorm's (y − μ)·s + β then the activation; then the shortcut added.
                  for (batchNorm, residual) in [(false, nil), (true, nil), (true, shortcut)] {
                    let out = Tensor(uninitializedShape: conv.shape)
                    withExtendedLifetime((x, w, b, residual, mean, scale, shift)) {
                        ConvKernels.forward(x: x.basePointer, weight: w.basePointer, bias: b?.basePointer,
                                            out: out.basePointer, g, activation: activation,
                                            residual: residual.map { UnsafePointer($0.basePointer) },
                                            mean: batchNorm ? mean.basePointer : nil,
                                            scale: batchNorm ? scale.basePointer : nil,
                                            shift: batchNorm ? shift.basePointer : nil)
                    }
                    var sums = conv.values.enumerated().map { i, v -> Double in
                        let co = (i / plane) % cout
                        return batchNorm
                            ? (Double(v) - Double(mean.scalars[co])) * Double(scale.scalars[co]) + Double(shift.scalars[co])
                            : Double(v)
                    }
                    if let residual { sums = zip(sums, residual.scalars).map { $0 + Double($1) } }
                    let expected = sums.map { Float(Self.reference(activation, $0)) }
                    let got = out.scalars
                    XCTAssertEqual(got.count, expected.count)
                    if let i = got.indices.first(where: { !(abs(got[$0] - expected[$0]) <= 2e-5 + 2e-5 * abs(expected[$0])) }) {
                        XCTFail("\(c.name), \(activation), \(isa), BatchNorm \(batchNorm), residual \(residual != nil): " +
                                "element \(i) is \(got[i]), expected \(expected[i])")
                    }
                  }
                }
            }
        }
    }

    /// The per-plane affine + activation pass in C (AVX-512, with its separate shift-only loops) and
    /// in Swift give the same bits for every activation but the two logistic ones (which agree to a
    /// few units in the last place), with a general affine and with mean 0, scale 1 (the form the
    /// convolution paths use), on a length with a partial vector and the special values.
    func testAffineActivationKernelsAgreeBitForBit() {
        let native = String(cString: finch_kernels_isa())
        defer { _ = finch_kernels_use(native) }
        var rng = TestRNG(61)
        let x = (0..<37).map { _ in rng.uniform(-9, 9) } + [0, -0.0, .infinity, -.infinity]
        let activations: [FusedActivation] = [.identity, .relu, .relu6, .hardswish, .hardsigmoid, .silu, .sigmoid]
        for activation in activations {
            for (mean, scale, shift) in [(Float(0.3), Float(1.7), Float(-0.4)), (0, 1, 0.25), (0, 1, 0)] {
                var results: [[Float]] = []
                for isa in ["avx512", "generic"] where finch_kernels_use(isa) == 1 {
                    var y = [Float](repeating: .nan, count: x.count)
                    x.withUnsafeBufferPointer { src in
                        y.withUnsafeMutableBufferPointer { dst in
                            Kernels.affineActivation(src.baseAddress!, dst.baseAddress!, x.count, mean: mean,
                                                     scale: scale, shift: shift, activation)
                        }
                    }
                    XCTAssertFalse(y.prefix(37).contains { $0.isNaN }, "\(activation), \(isa)")
                    results.append(y)
                }
                XCTAssertGreaterThanOrEqual(results.count, 1)
                guard results.count == 2 else { continue }
                if activation == .silu || activation == .sigmoid {
                    // AVX-512 takes 1/(1 + e⁻ʸ) from the reciprocal estimate and a Newton step: within
                    // a few units in the last place of the division, not equal to it.
                    for (c, w) in zip(results[0], results[1]) where !(c == w || (c.isNaN && w.isNaN) || abs(c - w) <= 4e-7 * abs(w)) {
                        XCTFail("\(activation), mean \(mean), scale \(scale): C \(c), Swift \(w)")
                    }
                } else {
                    XCTAssertTrue(zip(results[0], results[1]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                                  "\(activation), mean \(mean), scale \(scale): C and Swift differ")
                }
            }
        }
    }

    private func setWide(_ wide: Bool) {
        WinogradConv.allowWide = wide
        DepthwiseConvChannelTiles.allowWide = wide
        FewChannelConv.allowWide = wide
        SmallPlanePointwiseConv.allowWide = wide
    }
}
