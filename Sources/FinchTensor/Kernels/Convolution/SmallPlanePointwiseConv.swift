import CFinchKernels

/// 1×1 convolutions on small planes (4×4 to 15×15). Per-sample GEMMs there are too narrow for
/// BLAS (n = H·W = 16 or 64), and the batched column path spends as long gathering the batch into
/// [C, N·H·W] and scattering the result back as in the GEMM (MobileNetV3-Small's late stages and
/// MobileViT's). The kernel in CFinchKernels reads NCHW as it is: sixteen pixels per vector and a
/// block of output channels in registers (eight pixels on AVX2, the same bits). On the generic path
/// the column path runs.
enum SmallPlanePointwiseConv {
    /// Planes in this range take the kernel (larger ones run one GEMM per sample).
    static let planes = 16..<256

    /// When false, the column path runs even where the kernel exists (for tests).
    static var allowWide = true

    /// On AVX2 (eight pixels a vector, half AVX-512's registers) the kernel beats the column path's
    /// GEMM only for narrow layers: ResNet50's 1024×256 to 2048×512 layers at 7×7–14×14 ran at half
    /// the GEMM's speed (eval 20.1 → 9.5 img/s at 224 px).
    static let avx2MaxWeights = 1 << 17

    /// On AVX2 the kernel works in blocks of sixteen pixels and pays for a partial one as for a whole
    /// one; with its blocks at least 7⁄8 full it ties or beats the column path's GEMM, below that it
    /// loses (MobileNetV3-Small's 96 → 576 layers at batch 32, one thread: 4×4, 8×8 and 14×14 tie or
    /// win, 7×7 (49 of 64 pixels) took 1.6× the GEMM's time; the whole model at 224 px, one thread,
    /// shared machine: 7 % less CPU time than with the former limit of 64 pixels, which took 7×7 and
    /// left 14×14 to the GEMM; EfficientNet-Lite0 and MobileViT-XXS at 224 px unchanged).
    static func avx2Takes(_ g: ConvGeometry) -> Bool {
        return g.c * g.cout <= avx2MaxWeights && 8 * g.hw >= 7 * 16 * ((g.hw + 15) / 16)
    }

    /// On AVX-512 the kernel re-reads the batch's input once per block of six output channels, so
    /// on 14×14 planes (batch 32: 2–25 MB of input, out of cache) it ran at a quarter to half the
    /// column path's speed (one thread, shared machine: ResNet50's 1024 → 256 3.7×, EfficientNet-Lite0's
    /// 672 → 112 3.9× the column path's time; Benchmarks/pointwise_small_vs_gemm.c). It keeps planes
    /// of at most 64 pixels (4×4 to 8×8), where it won or tied (MobileNetV3-Small's 576 → 96 at 7×7,
    /// ResNet50's 8×8 and 4×4 layers at 128 px). A 7×7 plane fills 49 of its 64 lanes; with 2²⁰
    /// weights (ResNet50's 512 ↔ 2048 layers at 224 px) that waste made it lose in every run
    /// (1.2–1.9× the column path's time), so such layers need planes that fill whole vectors.
    /// Narrow layers keep the kernel on larger planes too: with few blocks the input is re-read a few
    /// times only, and the column path's gather and scatter cost as much as its GEMM (MobileNetV3-Small's
    /// 14×14 layers of ≤ 14 K weights: eval at 224 px 11 % slower on the column path).
    static let avx512MaxPlane = 64
    static let avx512MaxWeightsPartial = 1 << 20
    static let avx512MaxWeightsLargePlane = 1 << 15

    static func avx512Takes(_ g: ConvGeometry) -> Bool {
        let weights = g.c * g.cout
        guard g.hw <= avx512MaxPlane else { return weights <= avx512MaxWeightsLargePlane }
        return g.hw % 16 == 0 || weights < avx512MaxWeightsPartial
    }

    static func applies(to g: ConvGeometry) -> Bool {
        g.isPointwise && g.groups == 1 && planes.contains(g.hw)
    }

    /// Writes out = conv2d(x, weight) + bias and returns true, or returns false having done nothing.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry) -> Bool {
        guard allowWide, KernelPath.active >= .avx2 else { return false }
        if KernelPath.active == .avx2, !avx2Takes(g) { return false }
        if KernelPath.active == .avx512, !avx512Takes(g) { return false }
        let units = finch_pointwise_small_units(g.n, g.cout, g.hw)
        let perUnit = Swift.max(1, g.c * g.hw * g.cout * g.n / Swift.max(units, 1))
        Parallel.forEach(units, grain: Swift.max(1, 65536 / perUnit)) { range in
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: 16 * g.c)
            defer { packed.deallocate() }
            _ = finch_pointwise_small(x, weight, bias, out, g.n, g.c, g.cout, g.hw, range.lowerBound, range.upperBound,
                                      packed)
        }
        return true
    }
}
