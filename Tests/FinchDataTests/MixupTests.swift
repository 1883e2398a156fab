import XCTest
import Foundation
import FinchTensor
@testable import FinchData

/// MixUp/CutMix against timm's formulas (Tests/Fixtures/data/mixup_reference.json, made by
/// tools/make_mixup_reference.py) and the semantics each mode promises.
final class MixupTests: XCTestCase {
    static let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/data/mixup_reference.json").standardized

    /// Sample i is the constant image i+1 in every channel, so each pixel tells where it came from.
    func constantBatch(_ n: Int, c: Int = 3, h: Int = 8, w: Int = 10) -> Tensor {
        Tensor((0..<n).flatMap { i in [Float](repeating: Float(i + 1), count: c * h * w) }, shape: [n, c, h, w])
    }

    func testBoxesAndTargetsMatchTimm() throws {
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.reference)) as! [String: Any]
        for b in ref["boxes"] as! [[String: Any]] {
            let h = b["h"] as! Int, w = b["w"] as! Int, lam = b["lam"] as! Double
            let box = Mixup.centeredBox(height: h, width: w, lam: lam, cy: b["cy"] as! Int, cx: b["cx"] as! Int)
            XCTAssertEqual([box.0, box.1, box.2, box.3], b["box"] as! [Int], "\(b)")
            let corrected = 1 - Double((box.1 - box.0) * (box.3 - box.2)) / Double(h * w)
            XCTAssertEqual(corrected, b["corrected"] as! Double, accuracy: 1e-12)
        }
        for t in ref["targets"] as! [[String: Any]] {
            let m = Mixup(labelSmoothing: t["smoothing"] as! Double, numClasses: t["classes"] as! Int)
            let ours = m.targets(labels: t["labels"] as! [Int], lams: t["lams"] as! [Double])
            let theirs = (t["targets"] as! [NSNumber]).map { $0.floatValue }
            for (a, b) in zip(ours.scalars, theirs) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        }
    }

    func testBatchModeCutMixPastesTheMirrorAndLamIsTheKeptArea() {
        let m = Mixup(mixupAlpha: 0, cutmixAlpha: 1, mode: .batch, labelSmoothing: 0, numClasses: 4)
        var rng = RandomGenerator(seed: 11)
        for _ in 0..<20 {
            let x = constantBatch(4)
            let draws = m.draw(batchSize: 4, height: 8, width: 10, using: &rng)
            XCTAssertTrue(draws.allSatisfy { $0 == draws[0] }, "batch mode: one draw for all")
            let (mixed, targets) = m.apply(draws, images: x, labels: [0, 1, 2, 3])
            for i in 0..<4 {
                let sample = mixed.narrowed(axis: 0, start: i, length: 1).scalars
                let pasted = sample.filter { $0 == Float(4 - i) }.count, own = sample.filter { $0 == Float(i + 1) }.count
                XCTAssertEqual(pasted + own, sample.count)
                // λ = share of pixels that stayed the sample's own (correct_lam).
                XCTAssertEqual(draws[i].lam, Double(own) / Double(sample.count), accuracy: 1e-12)
                let row = Array(targets.scalars[(i * 4)..<(i * 4 + 4)])
                XCTAssertEqual(Double(row.reduce(0, +)), 1, accuracy: 1e-6)
                XCTAssertEqual(Double(row[i]), draws[i].lam, accuracy: 1e-6)
                XCTAssertEqual(Double(row[3 - i]), 1 - draws[i].lam, accuracy: 1e-6)
            }
        }
    }

    func testElemModeDrawsPerSampleAndPairModeMixesSymmetrically() {
        var rng = RandomGenerator(seed: 5)
        let elem = Mixup(mixupAlpha: 0.4, cutmixAlpha: 1, mode: .elem, numClasses: 3)
        let d = elem.draw(batchSize: 6, height: 8, width: 10, using: &rng)
        XCTAssertGreaterThan(Set(d.map(\.lam)).count, 3, "elem mode: per-sample λ")
        XCTAssertTrue(d.contains { $0.box != nil } && d.contains { $0.box == nil }, "both CutMix and MixUp elements")

        let pair = Mixup(mixupAlpha: 0.4, cutmixAlpha: 0, mode: .pair, labelSmoothing: 0, numClasses: 6)
        let pd = pair.draw(batchSize: 6, height: 8, width: 10, using: &rng)
        for i in 0..<3 { XCTAssertEqual(pd[i], pd[5 - i], "pair \(i) shares λ with its mirror") }
        let x = constantBatch(6)
        let (mixed, targets) = pair.apply(pd, images: x, labels: [0, 1, 2, 3, 4, 5])
        for i in 0..<6 {
            let lam = Float(pd[i].lam)
            let v = mixed[i, 0, 0, 0]
            XCTAssertEqual(v, Float(i + 1) * lam + Float(6 - i) * (1 - lam), accuracy: 1e-5)
            XCTAssertEqual(Double(targets.scalars[(i * 6)..<(i * 6 + 6)].reduce(0, +)), 1, accuracy: 1e-6)
        }
    }

    func testOddBatchesLeaveTheMiddleSampleAlone() {
        var rng = RandomGenerator(seed: 9)
        for mode in Mixup.Mode.allCases {
            let m = Mixup(mixupAlpha: 0.8, cutmixAlpha: 1, mode: mode, labelSmoothing: 0.1, numClasses: 5)
            let x = constantBatch(5)
            let (mixed, targets) = m(images: x, labels: [0, 1, 2, 3, 4], using: &rng)
            XCTAssertEqual(mixed.narrowed(axis: 0, start: 2, length: 1).scalars, x.narrowed(axis: 0, start: 2, length: 1).scalars, "\(mode)")
            let middle = Array(targets.scalars[10..<15])
            XCTAssertEqual(middle[2], 0.92, accuracy: 1e-6, "\(mode): own smoothed one-hot")
            XCTAssertEqual(middle[0], 0.02, accuracy: 1e-6)
            for i in 0..<5 { XCTAssertEqual(Double(targets.scalars[(i * 5)..<(i * 5 + 5)].reduce(0, +)), 1, accuracy: 1e-6) }
        }
    }

    func testProbabilityZeroIsTheIdentity() {
        var rng = RandomGenerator(seed: 2)
        for mode in Mixup.Mode.allCases {
            let m = Mixup(mixupAlpha: 1, cutmixAlpha: 1, prob: 0, mode: mode, labelSmoothing: 0.1, numClasses: 4)
            let x = constantBatch(4)
            let (mixed, targets) = m(images: x, labels: [3, 1, 0, 2], using: &rng)
            XCTAssertEqual(mixed.scalars, x.scalars)
            let expected = m.targets(labels: [3, 1, 0, 2], lams: [1, 1, 1, 1])
            XCTAssertEqual(targets.scalars, expected.scalars)
            XCTAssertEqual(targets[0, 3], 0.925, accuracy: 1e-6)
        }
    }

    func testMinMaxBoxesStayInTheirRangeAndMixupOnlyNeverCuts() {
        var rng = RandomGenerator(seed: 3)
        let m = Mixup(mixupAlpha: 0, cutmixMinMax: (0.25, 0.5), numClasses: 2)
        XCTAssertEqual(m.cutmixAlpha, 1, "timm forces alpha 1 with a min/max range")
        for _ in 0..<200 {
            let d = m.cutmixBox(height: 40, width: 20, lam: 0.5, using: &rng)
            let b = d.box!
            XCTAssertTrue((10..<20).contains(b.yh - b.yl) && (5..<10).contains(b.xh - b.xl), "\(b)")
            XCTAssertTrue(b.yl >= 0 && b.yh <= 40 && b.xl >= 0 && b.xh <= 20)
            XCTAssertEqual(d.lam, 1 - Double((b.yh - b.yl) * (b.xh - b.xl)) / 800, accuracy: 1e-12)
        }
        let mixOnly = Mixup(mixupAlpha: 0.2, cutmixAlpha: 0, mode: .elem, numClasses: 2)
        XCTAssertTrue(mixOnly.draw(batchSize: 64, height: 4, width: 4, using: &rng).allSatisfy { $0.box == nil })
        // MixUp's λ ~ Beta(0.2, 0.2): mean 1/2, most mass near 0 and 1.
        let lams = (0..<4000).map { _ in mixOnly.drawLam(using: &rng)!.lam }
        XCTAssertEqual(lams.reduce(0, +) / 4000, 0.5, accuracy: 0.03)
        XCTAssertGreaterThan(Double(lams.filter { $0 < 0.1 || $0 > 0.9 }.count) / 4000, 0.5)
    }
}
