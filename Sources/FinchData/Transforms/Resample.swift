import FinchTensor

/// Separable resampling of a box of an image, bit for bit Pillow's `Image.resize(size, filter, box)`
/// on an 8-bit RGB image: the filter's support widens with the scale when shrinking (downscaling is
/// antialiased), the normalised weights are rounded to 22-bit fixed point, the horizontal pass is
/// rounded and clamped to 8 bits before the vertical one reads it, and a pass whose axis keeps its
/// size and box is skipped. Matching Pillow's roundings exactly is what makes Finch's val inputs
/// the ones timm's transforms make: a float intermediate, rounded once, differed by one level in
/// about a fifth of the values, which changed the predicted class of 1–8 % of the flowers val
/// photos for a fine-tuned Lite0 (`Experiments/cross_eval.py`).
public enum Resample {
    public enum Filter: String, Sendable {
        case bilinear, bicubic
        var support: Double { self == .bilinear ? 1 : 2 }
        /// Pillow's filters, in its operation order (the results are rounded to fixed point, so the
        /// order of a polynomial's terms shows in the output).
        @inline(__always) func weight(_ x: Double) -> Double {
            let a = Swift.abs(x)
            switch self {
            case .bilinear: return a < 1 ? 1 - a : 0
            case .bicubic:   // Keys cubic with a = −0.5
                let k = -0.5
                if a < 1 { return ((k + 2) * a - (k + 3)) * a * a + 1 }
                if a < 2 { return (((a - 5) * a + 8) * a - 4) * k }
                return 0
            }
        }
    }

    /// Fractional bits of a weight: 8 for the pixel and 2 of headroom left in 32 bits, so a sum of
    /// weighted 8-bit values cannot overflow Int32 (Σ|w| < 2 for both filters: 255·2²³ < 2³¹).
    static let precisionBits: Int32 = 22

    /// Taps for one axis: for each output index the first source index, the tap count and its
    /// weights in fixed point (`stride` slots per output index).
    struct Taps {
        let first: [Int], count: [Int], weights: [Int32], stride: Int
    }

    static func taps(inSize: Int, start: Double, end: Double, outSize: Int, filter: Filter) -> Taps {
        let scale = (end - start) / Double(outSize)
        let fs = max(scale, 1)
        let support = filter.support * fs
        let inverse = 1 / fs
        let stride = Int(support.rounded(.up)) * 2 + 1
        let one = Double(1 << precisionBits)
        var first = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        var w = [Double](repeating: 0, count: stride)
        for i in 0..<outSize {
            let center = start + (Double(i) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let n = max(min(Int(center + support + 0.5), inSize) - lo, 0)
            var total = 0.0
            for k in 0..<n {
                w[k] = filter.weight((Double(k + lo) - center + 0.5) * inverse)
                total += w[k]
            }
            first[i] = lo
            count[i] = min(n, stride)
            for k in 0..<count[i] {
                // Normalised, then rounded half away from zero (C's truncating cast of v ± 0.5).
                let v = (total != 0 ? w[k] / total : w[k]) * one
                weights[i * stride + k] = Int32(v < 0 ? (v - 0.5).rounded(.towardZero) : (v + 0.5).rounded(.towardZero))
            }
        }
        return Taps(first: first, count: count, weights: weights, stride: stride)
    }

    /// A fixed-point sum (rounding half included) back to 8 bits, clamped.
    @inline(__always)
    static func clip8(_ s: Int32) -> UInt8 {
        if s <= 0 { return 0 }
        if s >= 1 << (precisionBits + 8) { return 255 }
        return UInt8(truncatingIfNeeded: s >> precisionBits)
    }

    /// Resamples the box (x0, y0)–(x1, y1) of `image` to width × height.
    public static func resize(_ image: Image, box: (Double, Double, Double, Double)? = nil, width: Int, height: Int, filter: Filter) -> Image {
        let b = box ?? (0, 0, Double(image.width), Double(image.height))
        ensure(width > 0 && height > 0, "Resample.resize: output size \(width)×\(height) must be positive")
        // Pillow's rules for a box (its ValueErrors). Inside the image every output value has a tap
        // of weight near 1, so the normalised weights stay bounded.
        ensure(b.0 >= 0 && b.1 >= 0 && b.2 <= Double(image.width) && b.3 <= Double(image.height) && b.0 <= b.2 && b.1 <= b.3,
               "Resample.resize: box \(b) must lie within the \(image.width)×\(image.height) image and not be negative in size")
        // Pillow's tests: an axis is resampled unless it keeps its size and its box is the whole axis.
        let horizontal = width != image.width || b.0 != 0 || b.2 != Double(width)
        let vertical = height != image.height || b.1 != 0 || b.3 != Double(height)
        let tx = taps(inSize: image.width, start: b.0, end: b.2, outSize: width, filter: filter)
        let ty = taps(inSize: image.height, start: b.1, end: b.3, outSize: height, filter: filter)
        var source = image
        // Only the rows the vertical pass reads (all of them when it is skipped).
        let rows = ty.first[0]..<(ty.first[height - 1] + ty.count[height - 1])
        if horizontal {
            source = Image(width: width, height: rows.count, pixels: horizontalPass(image, rows: rows, tx, width: width))
        }
        guard vertical else { return source }
        return Image(width: source.width, height: height,
                     pixels: verticalPass(source.pixels, width: source.width, firstRow: horizontal ? rows.lowerBound : 0, ty, height: height))
    }

    /// Each kept source row resampled to `width`, rounded to 8 bits.
    private static func horizontalPass(_ image: Image, rows: Range<Int>, _ tx: Taps,
                                       width: Int) -> [UInt8] {
        let half: Int32 = 1 << (precisionBits - 1)
        var out = [UInt8](repeating: 0, count: rows.count * width * 3)
        image.pixels.withUnsafeBufferPointer { src in
            tx.weights.withUnsafeBufferPointer { kw in
                out.withUnsafeMutableBufferPointer { dst in
                    for (r, y) in rows.enumerated() {
                        let srow = y * image.width * 3
                        for x in 0..<width {
                            var s0 = half, s1 = half, s2 = half
                            let f = tx.first[x], wb = x * tx.stride
                            // Bounded as `precisionBits` says, so the wrapping operators never wrap.
                            for k in 0..<tx.count[x] {
                                let w = kw[wb + k], p = srow + (f + k) * 3
                                s0 = s0 &+ w &* Int32(src[p])
                                s1 = s1 &+ w &* Int32(src[p + 1])
                                s2 = s2 &+ w &* Int32(src[p + 2])
                            }
                            let d = (r * width + x) * 3
                            dst[d] = clip8(s0); dst[d + 1] = clip8(s1); dst[d + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Output rows as weighted sums of whole source rows (`firstRow` is the source's row 0 in the
    /// taps' numbering), a loop the compiler vectorises.
    private static func verticalPass(_ source: [UInt8], width: Int, firstRow: Int,
                                     _ ty: Taps, height: Int) -> [UInt8] {
        let rowLen = width * 3
        let half: Int32 = 1 << (precisionBits - 1)
        var out = [UInt8](repeating: 0, count: height * rowLen)
        var acc = [Int32](repeating: 0, count: rowLen)
        source.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { o in
                acc.withUnsafeMutableBufferPointer { a in
                    ty.weights.withUnsafeBufferPointer { kw in
                        for y in 0..<height {
                            let f = ty.first[y] - firstRow, wb = y * ty.stride
                            for x in 0..<rowLen { a[x] = half }
                            for k in 0..<ty.count[y] {
                                let w = kw[wb + k], row = m.baseAddress! + (f + k) * rowLen
                                for x in 0..<rowLen { a[x] = a[x] &+ w &* Int32(row[x]) }
                            }
                            let dst = o.baseAddress! + y * rowLen
                            for x in 0..<rowLen { dst[x] = clip8(a[x]) }
                        }
                    }
                }
            }
        }
        return out
    }
}
