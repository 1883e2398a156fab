import Foundation
import FinchTensor

/// timm's `create_transform` pipelines on decoded images, ending in a normalised CHW tensor.
public struct ImageTransform: Sendable {
    public var size: Int
    public var training: Bool
    public var scale: (Double, Double) = (0.08, 1)
    public var ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0)
    public var hflip: Double = 0.5
    public var vflip: Double = 0
    public var colorJitter: Double = 0.4
    /// "bilinear", "bicubic", or "random" (either, per image, as timm's training default).
    public var interpolation: String = "bicubic"
    public var evalInterpolation: String = "bicubic"
    public var cropPct: Double = 0.875
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]
    /// timm's secondary transform: RandAugment replaces colour jitter when set.
    public var randAugment: RandAugment? = nil
    /// Applied to the normalised tensor, last, as timm does.
    public var randomErasing: RandomErasing? = nil

    public init(size: Int, training: Bool) {
        self.size = size
        self.training = training
    }

    /// The short side to ask of the JPEG decoder, which may then decode at a reduced DCT scale.
    /// torchvision decodes at full size and resamples with antialiasing; a DCT-scaled decode only
    /// stays indistinguishable from that when the pipeline still shrinks the result at least 2×.
    /// So: twice the short side of the smallest random crop (training), twice the resize target (eval).
    public var decodeShortSide: Int {
        // Capped so that a tiny scale or crop_pct (refused by validate()) cannot trap in Int(_:).
        let target = training ? 2 * Double(size) / scale.0.squareRoot() : 2 * (Double(size) / cropPct).rounded(.down)
        return target > 0 && target < Double(Int32.max) ? Int(target.rounded(.up)) : Int(Int32.max)
    }

    /// Applies the pipeline and writes normalised RGB planes to `out` (3·size·size floats).
    public func apply(_ image: Image, rng: inout RandomGenerator, into out: UnsafeMutablePointer<Float>) {
        var im: Image
        if training {
            let (x, y, w, h) = randomResizedCropBox(width: image.width, height: image.height, rng: &rng)
            let filter: Resample.Filter = interpolation == "random" ? (rng.nextFloat() < 0.5 ? .bilinear : .bicubic)
                : (Resample.Filter(rawValue: interpolation) ?? .bicubic)
            // torchvision's resized_crop: the crop becomes an image of its own, then is resized, so
            // the filter's taps stop at the crop's edges (a box on the whole photo would read past them).
            im = Resample.resize(crop(image, x: x, y: y, width: w, height: h), width: size, height: size, filter: filter)
            if hflip > 0, rng.nextDouble() < hflip { im = flipped(im, horizontal: true) }
            if vflip > 0, rng.nextDouble() < vflip { im = flipped(im, horizontal: false) }
            if let ra = randAugment { im = ra.apply(im, rng: &rng) }
            else if colorJitter > 0 { im = jitter(im, strength: colorJitter, rng: &rng) }
        } else {
            // Resize the shorter side to ⌊size / crop_pct⌋, then centre-crop size × size.
            let short = Int((Double(size) / cropPct).rounded(.down))
            let (w, h) = image.width <= image.height
                ? (short, Int(Double(short) * Double(image.height) / Double(image.width)))
                : (Int(Double(short) * Double(image.width) / Double(image.height)), short)
            let resized = Resample.resize(image, width: w, height: h, filter: Resample.Filter(rawValue: evalInterpolation) ?? .bicubic)
            // torchvision's CenterCrop rounds with Python's round(): halves go to the even neighbour.
            let top = Int((Double(h - size) / 2).rounded(.toNearestOrEven)), left = Int((Double(w - size) / 2).rounded(.toNearestOrEven))
            im = crop(resized, x: left, y: top, width: size, height: size)
        }
        normalize(im, into: out)
        if training, let re = randomErasing { re.apply(to: out, channels: 3, height: size, width: size, rng: &rng) }
    }

    /// torchvision's RandomResizedCrop.get_params: 10 tries of area and log-uniform aspect ratio,
    /// then the central crop clamped to the ratio range.
    func randomResizedCropBox(width W: Int, height H: Int, rng: inout RandomGenerator) -> (Int, Int, Int, Int) {
        let area = Double(W * H)
        let logRatio = (Foundation.log(ratio.0), Foundation.log(ratio.1))
        for _ in 0..<10 {
            let target = area * (scale.0 + (scale.1 - scale.0) * rng.nextDouble())
            let aspect = Foundation.exp(logRatio.0 + (logRatio.1 - logRatio.0) * rng.nextDouble())
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven)), h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && h > 0 && w <= W && h <= H {
                let y = rng.nextInt(below: H - h + 1), x = rng.nextInt(below: W - w + 1)
                return (x, y, w, h)
            }
        }
        let inRatio = Double(W) / Double(H)
        var w = W, h = H
        if inRatio < ratio.0 { h = Int((Double(w) / ratio.0).rounded(.toNearestOrEven)) }
        else if inRatio > ratio.1 { w = Int((Double(h) * ratio.1).rounded(.toNearestOrEven)) }
        return ((W - w) / 2, (H - h) / 2, w, h)
    }

    /// torchvision's ColorJitter(b, c, s) for b = c = s = strength on a PIL image: the three
    /// adjustments in a random order, each with a factor uniform in [1 − strength, 1 + strength],
    /// each through Pillow's ImageEnhance as torchvision calls it.
    func jitter(_ image: Image, strength: Double, rng: inout RandomGenerator) -> Image {
        var im = image
        let lo = max(0, 1 - strength), hi = 1 + strength
        for op in rng.permutation(3) {
            let f = lo + (hi - lo) * rng.nextDouble()
            switch op {
            case 0: im = ImageOps.brightness(im, factor: f)
            case 1: im = ImageOps.contrast(im, factor: f)
            default: im = ImageOps.color(im, factor: f)
            }
        }
        return im
    }

    func flipped(_ im: Image, horizontal: Bool) -> Image {
        var out = im.pixels
        for y in 0..<im.height {
            for x in 0..<im.width {
                let (sx, sy) = horizontal ? (im.width - 1 - x, y) : (x, im.height - 1 - y)
                for c in 0..<3 { out[(y * im.width + x) * 3 + c] = im.pixels[(sy * im.width + sx) * 3 + c] }
            }
        }
        return Image(width: im.width, height: im.height, pixels: out)
    }

    func crop(_ im: Image, x: Int, y: Int, width: Int, height: Int) -> Image {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for r in 0..<height {
            let s = ((r + y) * im.width + x) * 3
            for k in 0..<(width * 3) { out[r * width * 3 + k] = im.pixels[s + k] }
        }
        return Image(width: width, height: height, pixels: out)
    }

    /// (x/255 − mean)/std into planar CHW.
    func normalize(_ im: Image, into out: UnsafeMutablePointer<Float>) {
        let n = im.width * im.height
        let scale = (0..<3).map { 1 / (255 * std[$0]) }, shift = (0..<3).map { -mean[$0] / std[$0] }
        im.pixels.withUnsafeBufferPointer { p in
            for c in 0..<3 {
                let o = out + c * n, a = scale[c], b = shift[c]
                for i in 0..<n { o[i] = Float(p[i * 3 + c]) * a + b }
            }
        }
    }
}
