import FinchTensor

/// Separable resampling of a box of an image, as PIL's `Image.resize(size, filter, box)`: the
/// filter's support widens with the scale when shrinking, so downscaling is antialiased.
public enum Resample {
    public enum Filter: String, Sendable {
        case bilinear, bicubic
        var support: Double { self == .bilinear ? 1 : 2 }
        @inline(__always) func weight(_ x: Double) -> Double {
            let a = Swift.abs(x)
            switch self {
            case .bilinear: return a < 1 ? 1 - a : 0
            case .bicubic:   // Keys cubic with a = −0.5, PIL's bicubic
                if a < 1 { return (1.5 * a - 2.5) * a * a + 1 }
                if a < 2 { return ((-0.5 * a + 2.5) * a - 4) * a + 2 }
                return 0
            }
        }
    }

    /// Taps for one axis: for each output index, the first source index and normalised weights.
    static func taps(inSize: Int, start: Double, end: Double, outSize: Int, filter: Filter) -> (first: [Int], count: [Int], weights: [Float], stride: Int) {
        let scale = (end - start) / Double(outSize)
        let fs = max(scale, 1)
        let support = filter.support * fs
        let stride = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Float](repeating: 0, count: outSize * stride)
        for i in 0..<outSize {
            let center = start + (Double(i) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            var w = [Double](repeating: 0, count: max(hi - lo, 0))
            var total = 0.0
            for j in lo..<hi {
                let v = filter.weight((Double(j) - center + 0.5) / fs)
                w[j - lo] = v
                total += v
            }
            first[i] = lo
            count[i] = min(hi - lo, stride)
            for k in 0..<count[i] { weights[i * stride + k] = Float(total != 0 ? w[k] / total : 0) }
        }
        return (first, count, weights, stride)
    }

    /// Resamples the box (x0, y0)–(x1, y1) of `image` to width × height.
    public static func resize(_ image: Image, box: (Double, Double, Double, Double)? = nil, width: Int, height: Int, filter: Filter) -> Image {
        let b = box ?? (0, 0, Double(image.width), Double(image.height))
        let tx = taps(inSize: image.width, start: b.0, end: b.2, outSize: width, filter: filter)
        let ty = taps(inSize: image.height, start: b.1, end: b.3, outSize: height, filter: filter)
        // Rows needed by the vertical pass.
        let rowLo = ty.first.min() ?? 0
        let rowHi = zip(ty.first, ty.count).map { $0 + $1 }.max() ?? image.height
        let rows = rowHi - rowLo
        var mid = [Float](repeating: 0, count: rows * width * 3)
        image.pixels.withUnsafeBufferPointer { src in
          tx.weights.withUnsafeBufferPointer { txw in
            mid.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    let srow = (r + rowLo) * image.width * 3
                    for x in 0..<width {
                        var s0: Float = 0, s1: Float = 0, s2: Float = 0
                        let f = tx.first[x], wb = x * tx.stride
                        for k in 0..<tx.count[x] {
                            let w = txw[wb + k], p = srow + (f + k) * 3
                            s0 += w * Float(src[p]); s1 += w * Float(src[p + 1]); s2 += w * Float(src[p + 2])
                        }
                        let d = (r * width + x) * 3
                        dst[d] = s0; dst[d + 1] = s1; dst[d + 2] = s2
                    }
                }
            }
          }
        }
        // Vertical pass row by row: each output row is a weighted sum of whole source rows,
        // a loop the compiler vectorises; PIL rounds half up and clamps.
        let rowLen = width * 3
        var out = [UInt8](repeating: 0, count: height * rowLen)
        var acc = [Float](repeating: 0, count: rowLen)
        mid.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { o in
                acc.withUnsafeMutableBufferPointer { a in
                    ty.weights.withUnsafeBufferPointer { tw in
                        for y in 0..<height {
                            let f = ty.first[y] - rowLo, wb = y * ty.stride
                            for x in 0..<rowLen { a[x] = 0 }
                            for k in 0..<ty.count[y] {
                                let w = tw[wb + k], row = m.baseAddress! + (f + k) * rowLen
                                for x in 0..<rowLen { a[x] += w * row[x] }
                            }
                            let dst = o.baseAddress! + y * rowLen
                            for x in 0..<rowLen {
                                let v = a[x] + 0.5
                                dst[x] = v <= 0 ? 0 : (v >= 255 ? 255 : UInt8(v))
                            }
                        }
                    }
                }
            }
        }
        return Image(width: width, height: height, pixels: out)
    }
}
