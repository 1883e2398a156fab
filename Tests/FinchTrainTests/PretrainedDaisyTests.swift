import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchData
import FinchIO

/// The real ImageNet weights shipped in Checkpoints/ on real photos from Datasets/flowers: Finch
/// must call the same daisies "daisy" (ImageNet class 985) as timm does with the same transform.
/// Reference: Tests/Fixtures/pretrained/daisy_timm.json (tools/daisy_reference.py).
final class PretrainedDaisyTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    func testLite0FindsTheDaisiesTimmFinds() throws {
        let refURL = Self.root.appendingPathComponent("Tests/Fixtures/pretrained/daisy_timm.json")
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: refURL)) as! [String: Any]
        let rows = ref["images"] as! [[String: Any]]
        let weights = Self.root.appendingPathComponent("Checkpoints/tf_efficientnet_lite0.safetensors")
        let model = try ModelRegistry.create("tf_efficientnet_lite0", numClasses: 1000)
        let report = try model.loadPretrained(weights, replaceHead: false)
        XCTAssertTrue(report.replacedHead.isEmpty)
        model.eval()

        var t = ImageTransform(size: 224, training: false)
        t.cropPct = 0.875
        t.evalInterpolation = "bicubic"
        t.mean = [0.5, 0.5, 0.5]
        t.std = [0.5, 0.5, 0.5]
        var rng = RandomGenerator(seed: 0)
        var agree = 0, hits = 0, inTimmTop5 = 0
        for chunk in stride(from: 0, to: rows.count, by: 8) {
            let part = rows[chunk..<min(rows.count, chunk + 8)]
            let x = Tensor(uninitializedShape: [part.count, 3, 224, 224])
            for (i, row) in part.enumerated() {
                let url = Self.root.appendingPathComponent("Datasets/flowers/val/daisy").appendingPathComponent(row["file"] as! String)
                let image = try ImageDecoder.decode(contentsOf: url)
                t.apply(image, rng: &rng, into: x.basePointer + i * 3 * 224 * 224)
            }
            let top1 = noGrad { model(x) }.argmax(axis: 1)
            for (row, p) in zip(part, top1) {
                if p == row["top1"] as! Int { agree += 1 }
                if p == 985 { hits += 1 }
                if (row["top5"] as! [Int]).contains(p) { inTimmTop5 += 1 }
            }
        }
        let timmHits = ref["timm_hits"] as! Int
        print("daisy: Finch \(hits) of \(rows.count) → 985, timm \(timmHits); same top-1 on \(agree) of \(rows.count)")
        // The resampling is Pillow's bit for bit (ResampleTests), so the inputs are timm's and only
        // the two models' float rounding differs: every photo gets timm's class.
        XCTAssertEqual(agree, rows.count)
        XCTAssertEqual(inTimmTop5, rows.count, "every Finch top-1 is among timm's top 5")
        XCTAssertEqual(hits, timmHits)
    }
}
