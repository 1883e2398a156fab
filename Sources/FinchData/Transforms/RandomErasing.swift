import Foundation
import FinchTensor

/// timm's RandomErasing on a normalised CHW image (after mean/std, as timm applies it): with
/// probability `probability`, 1…`maxCount` boxes, each of area uniform in [2%, ⅓] of the image
/// divided by the count and log-uniform aspect in [0.3, 1/0.3] (10 tries to fit), filled with
/// per-pixel standard normals (`pixel`), one normal colour per channel (`rand`) or zeros (`const`).
public struct RandomErasing: Sendable, Equatable {
    public enum Mode: String, Sendable { case pixel, rand, const }

    public var probability: Double
    public var mode: Mode
    public var maxCount: Int
    public var minArea = 0.02
    public var maxArea = 1.0 / 3.0
    public var minAspect = 0.3

    /// Values are kept as given (a `re_count` of 0 is not quietly made 1); `validate()` checks them
    /// and `ImageTransform.validate()` calls it.
    public init(probability: Double, mode: Mode = .pixel, maxCount: Int = 1) {
        self.probability = probability
        self.mode = mode
        self.maxCount = maxCount
    }

    /// Erases boxes in place; returns the boxes (x, y, w, h) for tests and logs.
    @discardableResult
    public func apply(to image: UnsafeMutablePointer<Float>, channels: Int, height H: Int, width W: Int,
                      rng: inout RandomGenerator) -> [(x: Int, y: Int, w: Int, h: Int)] {
        guard probability > 0, rng.nextDouble() <= probability else { return [] }
        ensure(maxCount >= 1, "RandomErasing: re_count \(maxCount) < 1 (call validate() first)")
        let count = maxCount == 1 ? 1 : 1 + rng.nextInt(below: maxCount)
        let area = Double(H * W)
        let logAspect = (log(minAspect), log(1 / minAspect))
        var boxes: [(x: Int, y: Int, w: Int, h: Int)] = []
        for _ in 0..<count {
            for _ in 0..<10 {
                let target = (minArea + (maxArea - minArea) * rng.nextDouble()) * area / Double(count)
                let aspect = exp(logAspect.0 + (logAspect.1 - logAspect.0) * rng.nextDouble())
                let h = Int((target * aspect).squareRoot().rounded()), w = Int((target / aspect).squareRoot().rounded())
                guard w < W && h < H else { continue }
                let top = rng.nextInt(below: H - h + 1), left = rng.nextInt(below: W - w + 1)
                for c in 0..<channels {
                    let colour: Float = mode == .rand ? Float(rng.normal()) : 0
                    for y in top..<(top + h) {
                        let row = image + (c * H + y) * W + left
                        for x in 0..<w { row[x] = mode == .pixel ? Float(rng.normal()) : colour }
                    }
                }
                boxes.append((left, top, w, h))
                break
            }
        }
        return boxes
    }
}
