/// Range checks for the transform parameters, with timm's names in the messages. The types keep
/// settable properties (source compatibility), so the checks are a `validate()` that
/// `DataLoader` runs before it decodes anything; callers building transforms from a config
/// should call it too, to report a bad value before a run starts. Without them a `crop_pct` of 0
/// or a NaN `scale` would reach `Int(…)` of an infinity and trap.
extension ImageTransform {
    /// Largest `img_size` accepted: a 4096² crop is already 200 MB of floats per batch of 1.
    public static let maxSize = 4096

    public func validate() throws {
        guard (1...Self.maxSize).contains(size) else {
            throw DataParameterError(parameter: "img_size", value: "\(size)", reason: "must be between 1 and \(Self.maxSize)")
        }
        try checkRange("scale", scale, upper: 1)
        try checkRange("ratio", ratio, upper: nil)
        for (name, p) in [("hflip", hflip), ("vflip", vflip)] where !(p >= 0 && p <= 1) {
            throw DataParameterError(parameter: name, value: "\(p)", reason: "a probability must be in [0, 1]")
        }
        guard colorJitter.isFinite, colorJitter >= 0 else {
            throw DataParameterError(parameter: "color_jitter", value: "\(colorJitter)", reason: "must be a finite number ≥ 0")
        }
        for (name, v) in [("interpolation", interpolation), ("eval interpolation", evalInterpolation)]
        where !["bilinear", "bicubic", "random"].contains(v) {
            throw DataParameterError(parameter: name, value: "'\(v)'", reason: "must be bilinear, bicubic or random")
        }
        guard cropPct > 0, cropPct <= 1 else {
            throw DataParameterError(parameter: "crop_pct", value: "\(cropPct)", reason: "must be in (0, 1]")
        }
        // The eval resize target ⌊size / crop_pct⌋ is bounded too, or a crop_pct of 1e-300 overflows it.
        guard Double(size) / cropPct <= Double(16 * Self.maxSize) else {
            throw DataParameterError(parameter: "crop_pct", value: "\(cropPct)",
                                     reason: "resizes to \(Double(size) / cropPct) pixels before the \(size)-pixel crop; at most \(16 * Self.maxSize)")
        }
        guard mean.count == 3, mean.allSatisfy({ $0.isFinite }) else {
            throw DataParameterError(parameter: "mean", value: "\(mean)", reason: "must be three finite numbers (R, G, B)")
        }
        guard std.count == 3, std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw DataParameterError(parameter: "std", value: "\(std)", reason: "must be three finite numbers > 0 (R, G, B)")
        }
        try randAugment?.validate()
        try randomErasing?.validate()
    }

    /// torchvision's RandomResizedCrop ranges: 0 < lo ≤ hi, finite, and a scale at most 1.
    private func checkRange(_ name: String, _ r: (Double, Double), upper: Double?) throws {
        guard r.0.isFinite, r.1.isFinite, r.0 > 0, r.0 <= r.1 else {
            throw DataParameterError(parameter: name, value: "(\(r.0), \(r.1))", reason: "must be finite with 0 < low ≤ high")
        }
        if let upper, r.1 > upper {
            throw DataParameterError(parameter: name, value: "(\(r.0), \(r.1))", reason: "high must be at most \(upper)")
        }
    }
}

extension RandomErasing {
    /// Most boxes per image: timm's `re_count` is small in practice (1–3).
    public static let maxCount = 64

    public func validate() throws {
        guard probability >= 0, probability <= 1 else {
            throw DataParameterError(parameter: "re_prob", value: "\(probability)", reason: "a probability must be in [0, 1]")
        }
        guard (1...Self.maxCount).contains(maxCount) else {
            throw DataParameterError(parameter: "re_count", value: "\(maxCount)", reason: "must be between 1 and \(Self.maxCount)")
        }
        guard minArea.isFinite, maxArea.isFinite, minArea > 0, minArea <= maxArea, maxArea <= 1 else {
            throw DataParameterError(parameter: "min_area, max_area", value: "(\(minArea), \(maxArea))", reason: "must be finite with 0 < min ≤ max ≤ 1")
        }
        guard minAspect.isFinite, minAspect > 0 else {
            throw DataParameterError(parameter: "min_aspect", value: "\(minAspect)", reason: "must be finite and > 0")
        }
    }
}

extension RandAugment {
    /// Most ops per image (timm's `n`; 2 to 4 in practice).
    public static let maxLayers = 16
    /// Largest magnitude and `mmax` on timm's 0…10 scale; above 30 posterize and the shears lose meaning.
    public static let maxMagnitude = 30.0

    public func validate() throws {
        func fail(_ name: String, _ v: Any, _ why: String) -> DataParameterError {
            DataParameterError(parameter: "auto_augment \(name)", value: "\(v)", reason: why)
        }
        guard !ops.isEmpty else { throw fail("ops", "[]", "needs at least one op") }
        guard (0...Self.maxLayers).contains(layers) else { throw fail("n", layers, "must be between 0 and \(Self.maxLayers)") }
        guard magnitudeMax.isFinite, magnitudeMax >= 0, magnitudeMax <= Self.maxMagnitude else {
            throw fail("mmax", magnitudeMax, "must be in [0, \(Self.maxMagnitude)]")
        }
        guard magnitude.isFinite, magnitude >= 0, magnitude <= magnitudeMax else {
            // Int(_:) only of a value known to be small: the message must not trap on m = 1e300.
            let hint = magnitude > magnitudeMax && magnitude <= Self.maxMagnitude
                ? ": timm would clip every draw to mmax (raise mmax, e.g. mmax\(Int(magnitude.rounded(.up))), to mean it)" : ""
            throw fail("m", magnitude, "must be in [0, mmax = \(magnitudeMax)]\(hint)")
        }
        guard magnitudeStd == .infinity || (magnitudeStd.isFinite && magnitudeStd >= 0) else {
            throw fail("mstd", magnitudeStd, "must be a finite number ≥ 0 (or > 100 for uniform magnitudes)")
        }
        guard probability >= 0, probability <= 1 else { throw fail("p", probability, "a probability must be in [0, 1]") }
    }
}
