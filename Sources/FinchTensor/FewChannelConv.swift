import CFinchKernels

/// Direct convolution for inputs with few channels: the RGB stems (3→16 3×3 stride 2 in
/// MobileNetV3 and MobileViT, 3→32 in EfficientNet-Lite, 3→64 7×7 stride 2 in ResNet).
/// Their im2col copies the image kh·kw / stride² times for a GEMM only 27–147 deep, and was
/// 13% of a MobileNetV3-Small forward; the kernel in CFinchKernels reads each input vector
/// once per tap for sixteen output channels. AVX-512 only; elsewhere the im2col path runs.
enum FewChannelConv {
    /// Input channels above this go through im2col, whose GEMM is then deep enough to win.
    static var maximumChannels = 4

    /// When false, the im2col path runs even where the kernel exists (for tests).
    static var allowWide = true

    static func applies(to g: ConvGeometry) -> Bool {
        g.groups == 1 && g.c <= maximumChannels && g.dh == 1 && g.dw == 1 && (g.sw == 1 || g.sw == 2)
    }

    /// Writes out = conv2d(x, weight) + bias and returns true, or returns false having done nothing.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry) -> Bool {
        guard allowWide, Parallel.kernelISA == "avx512" else { return false }
        let geometry = [g.n, g.c, g.h, g.w, g.cout, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.ho, g.wo]
        let scratch = geometry.withUnsafeBufferPointer { finch_few_channel_conv_scratch($0.baseAddress!) }
        let units = g.n * ((g.cout + 15) / 16) * g.ho
        geometry.withUnsafeBufferPointer { geo in
            Parallel.forEach(units, grain: Swift.max(1, 4096 / Swift.max(g.wo * g.kg, 1))) { range in
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: scratch)
                defer { buffer.deallocate() }
                _ = finch_few_channel_conv(x, weight, bias, out, geo.baseAddress!, range.lowerBound, range.upperBound,
                                           buffer)
            }
        }
        return true
    }
}
