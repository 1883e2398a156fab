import Foundation
import FinchTensor

public struct AugmentConfigError: Error, CustomStringConvertible, Equatable {
    public let config: String
    public let reason: String
    public var description: String { "auto_augment '\(config)': \(reason)" }
}

/// timm's RandAugment (`rand_augment_transform`), configured by the same strings as timm's
/// `--aa`: `rand-m9-mstd0.5-inc1` = magnitude 9 of 10, magnitude noise σ 0.5, the "increasing"
/// op set. Sections: `m` magnitude, `n` ops per image (2), `mstd` magnitude σ (> 100: uniform in
/// [0, m]), `mmax` magnitude cap (10), `inc` 0/1, `p` probability of each op (0.5).
/// Each image draws `n` ops with replacement; each op fires with probability `p` at a magnitude
/// drawn per application, and signed ops flip sign with probability ½.
public struct RandAugment: Sendable, Equatable {
    public enum Op: String, CaseIterable, Sendable {
        case autoContrast = "AutoContrast", equalize = "Equalize", invert = "Invert", rotate = "Rotate"
        case posterize = "Posterize", posterizeIncreasing = "PosterizeIncreasing"
        case solarize = "Solarize", solarizeIncreasing = "SolarizeIncreasing", solarizeAdd = "SolarizeAdd"
        case color = "Color", colorIncreasing = "ColorIncreasing", contrast = "Contrast", contrastIncreasing = "ContrastIncreasing"
        case brightness = "Brightness", brightnessIncreasing = "BrightnessIncreasing"
        case sharpness = "Sharpness", sharpnessIncreasing = "SharpnessIncreasing"
        case shearX = "ShearX", shearY = "ShearY", translateXRel = "TranslateXRel", translateYRel = "TranslateYRel"
    }

    /// timm's `_RAND_TRANSFORMS` and `_RAND_INCREASING_TRANSFORMS`.
    public static let standardOps: [Op] = [.autoContrast, .equalize, .invert, .rotate, .posterize, .solarize, .solarizeAdd,
                                           .color, .contrast, .brightness, .sharpness, .shearX, .shearY, .translateXRel, .translateYRel]
    public static let increasingOps: [Op] = [.autoContrast, .equalize, .invert, .rotate, .posterizeIncreasing, .solarizeIncreasing,
                                             .solarizeAdd, .colorIncreasing, .contrastIncreasing, .brightnessIncreasing,
                                             .sharpnessIncreasing, .shearX, .shearY, .translateXRel, .translateYRel]

    public var ops: [Op]
    public var magnitude: Double = 10
    public var layers: Int = 2
    public var magnitudeStd: Double = 0
    public var magnitudeMax: Double = 10
    public var probability: Double = 0.5
    /// Fill for pixels that geometric ops uncover: the dataset mean in 0…255, as timm passes it.
    public var fill: (UInt8, UInt8, UInt8) = (128, 128, 128)
    /// nil: bilinear or bicubic at random per op (timm's default when interpolation is "random").
    public var filter: Resample.Filter? = nil

    public static func == (a: RandAugment, b: RandAugment) -> Bool {
        a.ops == b.ops && a.magnitude == b.magnitude && a.layers == b.layers && a.magnitudeStd == b.magnitudeStd
            && a.magnitudeMax == b.magnitudeMax && a.probability == b.probability && a.fill == b.fill && a.filter == b.filter
    }

    public init(ops: [Op] = RandAugment.standardOps) { self.ops = ops }

    /// Parses a timm RandAugment string; anything else is an error naming the section at fault.
    /// The values are then range-checked by `validate()` (m in [0, mmax], n ≤ 16, finite mstd ≥ 0…).
    public init(config: String) throws {
        let parts = config.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "rand" else {
            throw AugmentConfigError(config: config, reason: "only RandAugment strings ('rand-m9-mstd0.5-inc1') are supported")
        }
        var increasing = false
        self.init()
        for p in parts.dropFirst() {
            guard !p.isEmpty else { throw AugmentConfigError(config: config, reason: "empty section (two '-' in a row or a trailing '-')") }
            guard let split = p.firstIndex(where: { $0.isNumber || $0 == "." }) else {
                throw AugmentConfigError(config: config, reason: "section '\(p)' has no value")
            }
            let key = String(p[..<split]), text = String(p[split...])
            guard let v = Double(text), v.isFinite else {
                throw AugmentConfigError(config: config, reason: "section '\(p)': '\(text)' is not a finite number")
            }
            switch key {
            case "m": magnitude = v
            case "n":
                guard v >= 0, v == v.rounded() else { throw AugmentConfigError(config: config, reason: "n must be a whole number ≥ 0") }
                guard v <= Double(Self.maxLayers) else {
                    throw AugmentConfigError(config: config, reason: "n \(text) is more than \(Self.maxLayers) ops per image")
                }
                layers = Int(v)
            case "mstd": magnitudeStd = v > 100 ? .infinity : v
            case "mmax": magnitudeMax = v
            case "inc":
                guard v == 0 || v == 1 else { throw AugmentConfigError(config: config, reason: "inc must be 0 or 1") }
                increasing = v != 0
            case "p":
                guard (0...1).contains(v) else { throw AugmentConfigError(config: config, reason: "p must be in [0, 1]") }
                probability = v
            default:
                throw AugmentConfigError(config: config, reason: "unknown section '\(key)' (known: m, n, mstd, mmax, inc, p)")
            }
        }
        ops = increasing ? Self.increasingOps : Self.standardOps
        do { try validate() } catch let e as DataParameterError {
            throw AugmentConfigError(config: config, reason: "\(e.parameter.replacingOccurrences(of: "auto_augment ", with: "")) = \(e.value): \(e.reason)")
        }
    }

    public func apply(_ image: Image, rng: inout RandomGenerator) -> Image {
        var im = image
        for _ in 0..<layers {
            let op = ops[rng.nextInt(below: ops.count)]
            if probability < 1 && rng.nextDouble() > probability { continue }
            var m = magnitude
            if magnitudeStd == .infinity { m = rng.nextDouble() * magnitude }
            else if magnitudeStd > 0 { m = rng.normal(mean: magnitude, std: magnitudeStd) }
            m = max(0, min(m, magnitudeMax))
            im = Self.apply(op, magnitude: m, to: im, rng: &rng, fill: fill, filter: filter)
        }
        return im
    }

    /// One op at a magnitude on timm's 0…10 scale, with timm's level-to-argument rules.
    public static func apply(_ op: Op, magnitude m: Double, to im: Image, rng: inout RandomGenerator,
                             fill: (UInt8, UInt8, UInt8), filter: Resample.Filter?) -> Image {
        let level = m / 10
        func signed(_ v: Double) -> Double { rng.nextDouble() > 0.5 ? -v : v }
        func enhance() -> Double { level * 1.8 + 0.1 }
        func enhanceIncreasing() -> Double { max(0.1, 1 + signed(level * 0.9)) }
        func resample() -> Resample.Filter { filter ?? (rng.nextInt(below: 2) == 0 ? .bilinear : .bicubic) }
        switch op {
        case .autoContrast: return ImageOps.autoContrast(im)
        case .equalize: return ImageOps.equalize(im)
        case .invert: return ImageOps.invert(im)
        case .rotate:
            let deg = signed(level * 30)
            return ImageOps.rotate(im, degrees: deg, filter: resample(), fill: fill)
        case .posterize: return ImageOps.posterize(im, bits: Int(level * 4))
        case .posterizeIncreasing: return ImageOps.posterize(im, bits: 4 - Int(level * 4))
        case .solarize: return ImageOps.solarize(im, threshold: min(256, Int(level * 256)))
        case .solarizeIncreasing: return ImageOps.solarize(im, threshold: 256 - min(256, Int(level * 256)))
        case .solarizeAdd: return ImageOps.solarizeAdd(im, add: min(128, Int(level * 110)))
        case .color: return ImageOps.color(im, factor: enhance())
        case .colorIncreasing: return ImageOps.color(im, factor: enhanceIncreasing())
        case .contrast: return ImageOps.contrast(im, factor: enhance())
        case .contrastIncreasing: return ImageOps.contrast(im, factor: enhanceIncreasing())
        case .brightness: return ImageOps.brightness(im, factor: enhance())
        case .brightnessIncreasing: return ImageOps.brightness(im, factor: enhanceIncreasing())
        case .sharpness: return ImageOps.sharpness(im, factor: enhance())
        case .sharpnessIncreasing: return ImageOps.sharpness(im, factor: enhanceIncreasing())
        case .shearX:
            let f = signed(level * 0.3)
            return ImageOps.shearX(im, factor: f, filter: resample(), fill: fill)
        case .shearY:
            let f = signed(level * 0.3)
            return ImageOps.shearY(im, factor: f, filter: resample(), fill: fill)
        case .translateXRel:
            let pct = signed(level * 0.45)
            return ImageOps.translate(im, dx: pct * Double(im.width), dy: 0, filter: resample(), fill: fill)
        case .translateYRel:
            let pct = signed(level * 0.45)
            return ImageOps.translate(im, dx: 0, dy: pct * Double(im.height), filter: resample(), fill: fill)
        }
    }
}
