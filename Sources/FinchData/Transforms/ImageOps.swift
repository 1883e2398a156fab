import Foundation

/// The Pillow image operations timm's RandAugment is built from, on 8-bit RGB. Each follows
/// Pillow's integer arithmetic (its luminance weights, truncating blends, histogram-based
/// look-up tables) so an augmented image matches what a timm user's pipeline produces.
public enum ImageOps {
    /// Applies one 256-entry table per channel.
    static func lookup(_ im: Image, _ tables: [[UInt8]]) -> Image {
        var out = im.pixels
        out.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 3) {
                p[i] = tables[0][Int(p[i])]; p[i + 1] = tables[1][Int(p[i + 1])]; p[i + 2] = tables[2][Int(p[i + 2])]
            }
        }
        return Image(width: im.width, height: im.height, pixels: out)
    }

    static func histograms(_ im: Image) -> [[Int]] {
        var h = [[Int]](repeating: [Int](repeating: 0, count: 256), count: 3)
        for i in stride(from: 0, to: im.pixels.count, by: 3) {
            h[0][Int(im.pixels[i])] += 1; h[1][Int(im.pixels[i + 1])] += 1; h[2][Int(im.pixels[i + 2])] += 1
        }
        return h
    }

    /// Pillow's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point, rounded.
    @inline(__always) static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Int {
        (Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000) >> 16
    }

    /// ImageOps.autocontrast (cutoff 0): each channel stretched so its darkest value maps to 0
    /// and its brightest to 255.
    public static func autoContrast(_ im: Image) -> Image {
        let tables = histograms(im).map { h -> [UInt8] in
            guard let lo = h.firstIndex(where: { $0 > 0 }), let hi = h.lastIndex(where: { $0 > 0 }), hi > lo else {
                return (0..<256).map { UInt8($0) }
            }
            let scale = 255.0 / Double(hi - lo), offset = -Double(lo) * scale
            return (0..<256).map { UInt8(max(0, min(255, Int(Double($0) * scale + offset)))) }
        }
        return lookup(im, tables)
    }

    /// ImageOps.equalize: per channel, the cumulative histogram as the mapping, with Pillow's
    /// step that leaves the most frequent top value out.
    public static func equalize(_ im: Image) -> Image {
        let tables = histograms(im).map { h -> [UInt8] in
            let used = h.filter { $0 > 0 }
            let identity = (0..<256).map { UInt8($0) }
            guard used.count > 1 else { return identity }
            let step = (used.reduce(0, +) - used.last!) / 255
            guard step > 0 else { return identity }
            var n = step / 2
            return (0..<256).map { i in
                let v = UInt8(min(255, n / step))
                n += h[i]
                return v
            }
        }
        return lookup(im, tables)
    }

    public static func invert(_ im: Image) -> Image {
        let t = (0..<256).map { UInt8(255 - $0) }
        return lookup(im, [t, t, t])
    }

    /// Keeps the top `bits` bits of each value (8 or more: unchanged).
    public static func posterize(_ im: Image, bits: Int) -> Image {
        guard bits < 8 else { return im }
        let mask = UInt8(truncatingIfNeeded: ~((1 << (8 - max(0, bits))) - 1))
        let t = (0..<256).map { UInt8($0) & mask }
        return lookup(im, [t, t, t])
    }

    /// Values at or above `threshold` inverted.
    public static func solarize(_ im: Image, threshold: Int) -> Image {
        let t = (0..<256).map { $0 < threshold ? UInt8($0) : UInt8(255 - $0) }
        return lookup(im, [t, t, t])
    }

    /// timm's solarize_add: `add` added (saturating) to values below `threshold`.
    public static func solarizeAdd(_ im: Image, add: Int, threshold: Int = 128) -> Image {
        let t = (0..<256).map { $0 < threshold ? UInt8(min(255, $0 + add)) : UInt8($0) }
        return lookup(im, [t, t, t])
    }

    /// Image.blend(degenerate, image, factor) as Pillow computes it: interpolation truncates,
    /// extrapolation (factor outside [0, 1]) clips to 0…255 and truncates.
    static func blend(_ degenerate: [UInt8], _ im: Image, factor: Double) -> Image {
        let a = Float(factor)
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        im.pixels.withUnsafeBufferPointer { src in
            degenerate.withUnsafeBufferPointer { deg in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<o.count {
                        let d = Float(deg[i])
                        let v = d + a * (Float(src[i]) - d)
                        o[i] = v <= 0 ? 0 : (v >= 255 ? 255 : UInt8(v))
                    }
                }
            }
        }
        return Image(width: im.width, height: im.height, pixels: out)
    }

    /// ImageEnhance.Color: blend with the greyscale image.
    public static func color(_ im: Image, factor: Double) -> Image {
        var grey = im.pixels
        for i in stride(from: 0, to: grey.count, by: 3) {
            let l = UInt8(luma(im.pixels[i], im.pixels[i + 1], im.pixels[i + 2]))
            grey[i] = l; grey[i + 1] = l; grey[i + 2] = l
        }
        return blend(grey, im, factor: factor)
    }

    /// ImageEnhance.Contrast: blend with a flat image at the rounded mean luma.
    public static func contrast(_ im: Image, factor: Double) -> Image {
        var sum = 0
        for i in stride(from: 0, to: im.pixels.count, by: 3) { sum += luma(im.pixels[i], im.pixels[i + 1], im.pixels[i + 2]) }
        let mean = UInt8(Int(Double(sum) / Double(im.width * im.height) + 0.5))
        return blend([UInt8](repeating: mean, count: im.pixels.count), im, factor: factor)
    }

    /// ImageEnhance.Brightness: blend with black.
    public static func brightness(_ im: Image, factor: Double) -> Image {
        blend([UInt8](repeating: 0, count: im.pixels.count), im, factor: factor)
    }

    /// ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (3×3 kernel, 5 in the centre and
    /// 1 around, over 13, rounded), whose border pixels Pillow copies unfiltered.
    public static func sharpness(_ im: Image, factor: Double) -> Image {
        let w = im.width, h = im.height
        var smooth = im.pixels
        if w > 2 && h > 2 {
            for y in 1..<(h - 1) {
                for x in 1..<(w - 1) {
                    for c in 0..<3 {
                        var s = 0
                        for dy in -1...1 { for dx in -1...1 { s += Int(im.pixels[((y + dy) * w + x + dx) * 3 + c]) } }
                        s += 4 * Int(im.pixels[(y * w + x) * 3 + c])
                        smooth[(y * w + x) * 3 + c] = UInt8(min(255, (s * 2 + 13) / 26))
                    }
                }
            }
        }
        return blend(smooth, im, factor: factor)
    }

    /// Image.transform(size, AFFINE, (a, b, c, d, e, f)): output pixel centre (x+½, y+½) samples
    /// the input at (a·x + b·y + c, d·x + e·y + f); samples that fall outside get `fill`.
    public static func affine(_ im: Image, _ m: (Double, Double, Double, Double, Double, Double),
                              filter: Resample.Filter, fill: (UInt8, UInt8, UInt8)) -> Image {
        let w = im.width, h = im.height
        var out = [UInt8](repeating: 0, count: im.pixels.count)
        let fillc = [fill.0, fill.1, fill.2]
        im.pixels.withUnsafeBufferPointer { src in
            @inline(__always) func px(_ x: Int, _ y: Int, _ c: Int) -> Float {
                Float(src[(min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)) * 3 + c])
            }
            for y in 0..<h {
                for x in 0..<w {
                    let fx = Double(x) + 0.5, fy = Double(y) + 0.5
                    let sx = m.0 * fx + m.1 * fy + m.2, sy = m.3 * fx + m.4 * fy + m.5
                    let o = (y * w + x) * 3
                    guard sx >= 0, sy >= 0, sx < Double(w), sy < Double(h) else {
                        out[o] = fillc[0]; out[o + 1] = fillc[1]; out[o + 2] = fillc[2]
                        continue
                    }
                    // Pixel centres sit at +½: shift to index space before interpolating.
                    let ix = sx - 0.5, iy = sy - 0.5
                    let x0 = Int(ix.rounded(.down)), y0 = Int(iy.rounded(.down))
                    let tx = Float(ix - Double(x0)), ty = Float(iy - Double(y0))
                    // Tap weights once per pixel, shared by the three channels.
                    let wx = filter == .bicubic ? cubicWeights(tx) : SIMD4<Float>(repeating: 0)
                    let wy = filter == .bicubic ? cubicWeights(ty) : SIMD4<Float>(repeating: 0)
                    for c in 0..<3 {
                        var v: Float
                        switch filter {
                        case .bicubic:
                            v = 0
                            for j in 0..<4 {
                                var row: Float = 0
                                for i in 0..<4 { row += wx[i] * px(x0 - 1 + i, y0 - 1 + j, c) }
                                v += wy[j] * row
                            }
                        default:
                            let top = px(x0, y0, c) + tx * (px(x0 + 1, y0, c) - px(x0, y0, c))
                            let bottom = px(x0, y0 + 1, c) + tx * (px(x0 + 1, y0 + 1, c) - px(x0, y0 + 1, c))
                            v = top + ty * (bottom - top)
                        }
                        out[o + c] = UInt8(max(0, min(255, v)))  // Pillow truncates
                    }
                }
            }
        }
        return Image(width: w, height: h, pixels: out)
    }

    /// Pillow's geometric bicubic (Geometry.c): the a = −1 cubic, not the a = −0.5 one its
    /// resize uses, as weights for the four taps around a fractional offset t.
    static func cubicWeights(_ t: Float) -> SIMD4<Float> {
        let t2 = t * t, t3 = t2 * t
        return SIMD4(-t + 2 * t2 - t3, 1 - 2 * t2 + t3, t + t2 - t3, -t2 + t3)
    }

    /// Image.rotate(degrees) about the centre, counter-clockwise for positive angles, same size.
    public static func rotate(_ im: Image, degrees: Double, filter: Resample.Filter, fill: (UInt8, UInt8, UInt8)) -> Image {
        let a = -degrees.truncatingRemainder(dividingBy: 360) * .pi / 180
        let cx = Double(im.width) / 2, cy = Double(im.height) / 2
        let (m0, m1, m3, m4) = (cos(a), sin(a), -sin(a), cos(a))
        let m2 = m0 * -cx + m1 * -cy + cx, m5 = m3 * -cx + m4 * -cy + cy
        return affine(im, (m0, m1, m2, m3, m4, m5), filter: filter, fill: fill)
    }

    public static func shearX(_ im: Image, factor: Double, filter: Resample.Filter, fill: (UInt8, UInt8, UInt8)) -> Image {
        affine(im, (1, factor, 0, 0, 1, 0), filter: filter, fill: fill)
    }

    public static func shearY(_ im: Image, factor: Double, filter: Resample.Filter, fill: (UInt8, UInt8, UInt8)) -> Image {
        affine(im, (1, 0, 0, factor, 1, 0), filter: filter, fill: fill)
    }

    public static func translate(_ im: Image, dx: Double, dy: Double, filter: Resample.Filter, fill: (UInt8, UInt8, UInt8)) -> Image {
        affine(im, (1, 0, dx, 0, 1, dy), filter: filter, fill: fill)
    }
}
