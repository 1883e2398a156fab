import FinchTensor

/// MixUp and CutMix with timm's `Mixup` semantics: each sample is paired with its mirror in the
/// batch (i with N−1−i); MixUp blends the two images by λ, CutMix pastes a box of the partner and
/// (with `correctLam`) sets λ to the share of the image left untouched; targets become
/// λ·smooth(y) + (1−λ)·smooth(y_partner) with smooth = label smoothing's one-hot
/// (off = ε/K, on = 1 − ε + ε/K).
///
/// Odd batch sizes, which timm rejects, work here: the middle sample is its own mirror, so it
/// stays unmixed with its own smoothed one-hot target in every mode.
public struct Mixup: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case batch, pair, elem }

    public var mixupAlpha: Double
    public var cutmixAlpha: Double
    /// CutMix box side as a fraction of the image side, drawn uniformly in [min, max) (overrides λ's box).
    public var cutmixMinMax: (Double, Double)?
    /// Probability of mixing a batch (or element).
    public var prob: Double
    /// Probability of CutMix rather than MixUp when both are on.
    public var switchProb: Double
    public var mode: Mode
    /// Recompute λ from the clipped box area (timm's `correct_lam`).
    public var correctLam: Bool
    public var labelSmoothing: Double
    public var numClasses: Int

    public init(mixupAlpha: Double = 1, cutmixAlpha: Double = 0, cutmixMinMax: (Double, Double)? = nil, prob: Double = 1,
                switchProb: Double = 0.5, mode: Mode = .batch, correctLam: Bool = true, labelSmoothing: Double = 0.1,
                numClasses: Int) {
        self.mixupAlpha = mixupAlpha
        // timm: a min/max box range means CutMix with alpha 1 (the alpha is then unused for the box).
        self.cutmixAlpha = cutmixMinMax != nil ? 1 : cutmixAlpha
        self.cutmixMinMax = cutmixMinMax
        self.prob = prob
        self.switchProb = switchProb
        self.mode = mode
        self.correctLam = correctLam
        self.labelSmoothing = labelSmoothing
        self.numClasses = numClasses
    }

    /// What was drawn for one sample (or the whole batch): λ and, for CutMix, the box [yl, yh) × [xl, xh).
    public struct Draw: Equatable, Sendable {
        public var lam: Double
        public var box: (yl: Int, yh: Int, xl: Int, xh: Int)?
        public init(lam: Double, box: (yl: Int, yh: Int, xl: Int, xh: Int)? = nil) {
            self.lam = lam
            self.box = box
        }
        public static func == (a: Draw, b: Draw) -> Bool {
            a.lam == b.lam && a.box?.yl == b.box?.yl && a.box?.yh == b.box?.yh && a.box?.xl == b.box?.xl && a.box?.xh == b.box?.xh
        }
    }

    // MARK: Drawing the parameters (timm's _params_per_batch / _params_per_elem)

    /// λ and whether to CutMix, or nil when this batch/element is left alone.
    func drawLam(using rng: inout RandomGenerator) -> (lam: Double, cutmix: Bool)? {
        guard rng.nextDouble() < prob else { return nil }
        if mixupAlpha > 0 && cutmixAlpha > 0 {
            let cut = rng.nextDouble() < switchProb
            let a = cut ? cutmixAlpha : mixupAlpha
            return (rng.beta(a, a), cut)
        } else if mixupAlpha > 0 {
            return (rng.beta(mixupAlpha, mixupAlpha), false)
        } else {
            return (rng.beta(cutmixAlpha, cutmixAlpha), true)
        }
    }

    /// CutMix box for λ on an h×w image (timm's rand_bbox / rand_bbox_minmax) and the λ it implies.
    public func cutmixBox(height h: Int, width w: Int, lam: Double, using rng: inout RandomGenerator) -> Draw {
        let yl: Int, yh: Int, xl: Int, xh: Int
        if let (lo, hi) = cutmixMinMax {
            let cutH = randInt(Int(Double(h) * lo), Int(Double(h) * hi), &rng)
            let cutW = randInt(Int(Double(w) * lo), Int(Double(w) * hi), &rng)
            yl = randInt(0, h - cutH + 1, &rng)
            xl = randInt(0, w - cutW + 1, &rng)
            yh = yl + cutH
            xh = xl + cutW
        } else {
            let cy = randInt(0, h, &rng), cx = randInt(0, w, &rng)
            (yl, yh, xl, xh) = Mixup.centeredBox(height: h, width: w, lam: lam, cy: cy, cx: cx)
        }
        var lamOut = lam
        if correctLam || cutmixMinMax != nil {
            lamOut = 1 - Double((yh - yl) * (xh - xl)) / Double(h * w)
        }
        return Draw(lam: lamOut, box: (yl, yh, xl, xh))
    }

    /// timm's rand_bbox for a drawn centre: sides ⌊√(1−λ)·size⌋ around (cy, cx), clipped to the image.
    public static func centeredBox(height h: Int, width w: Int, lam: Double, cy: Int, cx: Int) -> (Int, Int, Int, Int) {
        let ratio = (1 - lam).squareRoot()
        let cutH = Int(Double(h) * ratio), cutW = Int(Double(w) * ratio)
        return (Swift.min(Swift.max(cy - cutH / 2, 0), h), Swift.min(Swift.max(cy + (cutH + 1) / 2, 0), h),
                Swift.min(Swift.max(cx - cutW / 2, 0), w), Swift.min(Swift.max(cx + (cutW + 1) / 2, 0), w))
    }

    /// numpy's randint(low, high): uniform in [low, high); `low` when the range is empty.
    private func randInt(_ low: Int, _ high: Int, _ rng: inout RandomGenerator) -> Int {
        high > low ? low + rng.nextInt(below: high - low) : low
    }

    /// The draws for a batch of `n` samples, one per sample (the partner of i is n−1−i).
    public func draw(batchSize n: Int, height h: Int, width w: Int, using rng: inout RandomGenerator) -> [Draw] {
        var draws = [Draw](repeating: Draw(lam: 1), count: n)
        switch mode {
        case .batch:
            guard let (lam, cut) = drawLam(using: &rng) else { return draws }
            let d = cut ? cutmixBox(height: h, width: w, lam: lam, using: &rng) : Draw(lam: lam)
            return [Draw](repeating: d, count: n)
        case .elem:
            for i in 0..<n {
                guard let (lam, cut) = drawLam(using: &rng) else { continue }
                draws[i] = cut ? cutmixBox(height: h, width: w, lam: lam, using: &rng) : Draw(lam: lam)
            }
        case .pair:
            for i in 0..<(n / 2) {
                guard let (lam, cut) = drawLam(using: &rng) else { continue }
                let d = cut ? cutmixBox(height: h, width: w, lam: lam, using: &rng) : Draw(lam: lam)
                draws[i] = d
                draws[n - 1 - i] = d
            }
        }
        // The middle sample of an odd batch is its own partner: leave it untouched.
        if n % 2 == 1 { draws[n / 2] = Draw(lam: 1) }
        return draws
    }

    /// The same draws for the batch rendered at another size (a distillation teacher's own view):
    /// λ is kept and each CutMix box edge e becomes ⌊e·to/from + ½⌋ (nearest, halves up; integer
    /// arithmetic, so timm_reference.py computes the same edges), which maps 0 and the full side
    /// onto themselves and keeps the box where it was on the photo.
    public static func scaled(_ draws: [Draw], from: (height: Int, width: Int), to: (height: Int, width: Int)) -> [Draw] {
        ensure(from.height > 0 && from.width > 0 && to.height > 0 && to.width > 0, "Mixup.scaled: sizes \(from) → \(to)")
        func edge(_ e: Int, _ f: Int, _ t: Int) -> Int { (2 * e * t + f) / (2 * f) }
        return draws.map { d in
            guard let b = d.box else { return d }
            return Draw(lam: d.lam, box: (edge(b.yl, from.height, to.height), edge(b.yh, from.height, to.height),
                                          edge(b.xl, from.width, to.width), edge(b.xh, from.width, to.width)))
        }
    }

    /// Mixes a second rendering of the batch (`images` [N, C, H, W] at any size) by draws made for
    /// `from` (the first rendering's height and width): blends by the same λ, pastes the scaled boxes.
    public func applyScaled(_ draws: [Draw], from: (height: Int, width: Int), images: Tensor) -> Tensor {
        ensure(images.rank == 4, "Mixup.applyScaled: images \(images.shape)")
        return mixImages(Mixup.scaled(draws, from: from, to: (images.shape[2], images.shape[3])), images: images)
    }

    // MARK: Applying them

    /// Mixes `images` [N, C, H, W] by `draws` (each sample with its mirror, read from the unmixed
    /// batch) and returns the mixed images and soft targets [N, numClasses].
    public func apply(_ draws: [Draw], images: Tensor, labels: [Int]) -> (images: Tensor, targets: Tensor) {
        ensure(images.rank == 4 && images.shape[0] == labels.count && draws.count == labels.count,
                     "Mixup: images \(images.shape), \(labels.count) labels, \(draws.count) draws")
        return (mixImages(draws, images: images), targets(labels: labels, lams: draws.map(\.lam)))
    }

    /// The images half of `apply`.
    func mixImages(_ draws: [Draw], images: Tensor) -> Tensor {
        ensure(images.rank == 4 && images.shape[0] == draws.count, "Mixup: images \(images.shape), \(draws.count) draws")
        let n = draws.count, c = images.shape[1], h = images.shape[2], w = images.shape[3]
        let src = images.contiguous()
        let out = src.copy()
        let plane = h * w, sample = c * plane
        let sp = src.basePointer, dp = out.basePointer
        for i in 0..<n {
            let d = draws[i], j = n - 1 - i
            guard d.lam != 1 || d.box != nil, j != i else { continue }
            if let box = d.box {
                for ch in 0..<c {
                    for y in box.yl..<box.yh {
                        let row = ch * plane + y * w
                        (dp + i * sample + row + box.xl).update(from: sp + j * sample + row + box.xl, count: box.xh - box.xl)
                    }
                }
            } else {
                let lam = Float(d.lam), rest = Float(1 - d.lam)
                let a = sp + i * sample, b = sp + j * sample, o = dp + i * sample
                for k in 0..<sample { o[k] = a[k] * lam + b[k] * rest }
            }
        }
        return out
    }

    /// λ·smooth(y) + (1−λ)·smooth(flip(y)) (timm's mixup_target), one λ per sample.
    public func targets(labels: [Int], lams: [Double]) -> Tensor {
        let n = labels.count, k = numClasses
        let off = labelSmoothing / Double(k), on = 1 - labelSmoothing + off
        var t = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            ensure(labels[i] >= 0 && labels[i] < k, "Mixup: label \(labels[i]) outside 0..<\(k)")
            let lam = lams[i], partner = labels[n - 1 - i]
            for cls in 0..<k {
                let y1 = cls == labels[i] ? on : off, y2 = cls == partner ? on : off
                t[i * k + cls] = Float(y1 * lam + y2 * (1 - lam))
            }
        }
        return Tensor(t, shape: [n, k])
    }

    /// Draws and applies in one call.
    public func callAsFunction(images: Tensor, labels: [Int], using rng: inout RandomGenerator) -> (images: Tensor, targets: Tensor) {
        let d = draw(batchSize: labels.count, height: images.shape[2], width: images.shape[3], using: &rng)
        return apply(d, images: images, labels: labels)
    }
}
