import CFinchKernels

/// Direct convolution for inputs with few channels and small kernels: the 3×3 stride-2 RGB stems
/// (3→16 in MobileNetV3 and MobileViT, 3→32 in EfficientNet-Lite). Their im2col copies the
/// image 9/4 times for a GEMM only 27 deep, and was 13% of a MobileNetV3-Small forward; the
/// kernel in CFinchKernels reads each input vector once per tap for sixteen output channels.
/// ResNet's 7×7 stem (147 deep, 64 channels) stays on im2col, where the GEMM is efficient
/// enough to win (eval 90 → 100 img/s median of four alternating runs when it moved back).
/// AVX-512 and AVX2 (the same bits); on the generic path the im2col path runs.
enum FewChannelConv {
    /// Input channels above this go through im2col, whose GEMM is then deep enough to win.
    static var maximumChannels = 4

    /// When false, the im2col path runs even where the kernel exists (for tests).
    static var allowWide = true

    static func applies(to g: ConvGeometry) -> Bool {
        // kh·kw ≤ 9: 3×3 and smaller.
        g.groups == 1 && g.c <= maximumChannels && g.dh == 1 && g.dw == 1 && (g.sw == 1 || g.sw == 2) && g.khw <= 9
    }

    /// Writes out = conv2d(x, weight) + bias and returns true, or returns false having done nothing.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                        epilogue: ConvKernels.Epilogue = .none) -> Bool {
        guard allowWide, KernelPath.active >= .avx2 else { return false }
        let geometry = [g.n, g.c, g.h, g.w, g.cout, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.ho, g.wo]
        let scratch = geometry.withUnsafeBufferPointer { finch_few_channel_conv_scratch($0.baseAddress!) }
        let units = g.n * ((g.cout + 15) / 16) * g.ho
        geometry.withUnsafeBufferPointer { geo in
            Parallel.forEach(units, grain: Swift.max(1, 4096 / Swift.max(g.wo * g.kg, 1))) { range in
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: scratch)
                defer { buffer.deallocate() }
                _ = finch_few_channel_conv(x, weight, bias, out, geo.baseAddress!, range.lowerBound, range.upperBound,
                                           buffer)
                if !epilogue.isNone { finish(out, units: range, g, epilogue) }
            }
        }
        return true
    }

    /// The epilogue over what units lo..<hi wrote, while it is in cache: unit u is output row
    /// u % Ho of sixteen channels (block (u / Ho) % blocks) of sample u / (Ho·blocks), so a run of
    /// units within one block covers consecutive rows of each of its channel planes.
    private static func finish(_ out: UnsafeMutablePointer<Float>, units: Range<Int>, _ g: ConvGeometry,
                               _ epilogue: ConvKernels.Epilogue) {
        let blocks = (g.cout + 15) / 16
        var u = units.lowerBound
        while u < units.upperBound {
            let run = u / g.ho, oh = u % g.ho
            let rows = Swift.min(g.ho - oh, units.upperBound - u)
            let s = run / blocks, c0 = (run % blocks) * 16
            for co in c0..<Swift.min(c0 + 16, g.cout) {
                epilogue.apply(out, offset: (s * g.cout + co) * g.hw + oh * g.wo, count: rows * g.wo, channel: co)
            }
            u += rows
        }
    }
}
