import XCTest
import Foundation
import FinchTensor
@testable import FinchData

/// RandAugment's ops against Pillow through timm's own op functions
/// (Tests/Fixtures/data/imageops_reference.json, made by tools/make_imageops_reference.py),
/// timm's config strings, and random erasing's boxes and fills.
final class RandAugmentTests: XCTestCase {
    struct Reference: Decodable {
        struct Case: Decodable { let op: String; let args: [Arg]; let output: String }
        enum Arg: Decodable {
            case number(Double), text(String)
            init(from d: Decoder) throws {
                let c = try d.singleValueContainer()
                if let v = try? c.decode(Double.self) { self = .number(v) } else { self = .text(try c.decode(String.self)) }
            }
            var number: Double { if case .number(let v) = self { return v }; return .nan }
            var filter: Resample.Filter { if case .text(let s) = self { return Resample.Filter(rawValue: s)! }; return .bilinear }
        }
        let width: Int, height: Int, fill: [UInt8], input: String, ops: [Case]
    }

    func reference() throws -> Reference {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/data/imageops_reference.json").standardized
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    func testOpsMatchPillowThroughTimm() throws {
        let ref = try reference()
        let input = Image(width: ref.width, height: ref.height, pixels: [UInt8](Data(base64Encoded: ref.input)!))
        let fill = (ref.fill[0], ref.fill[1], ref.fill[2])
        for c in ref.ops {
            let a = c.args
            let ours: Image
            switch c.op {
            case "AutoContrast": ours = ImageOps.autoContrast(input)
            case "Equalize": ours = ImageOps.equalize(input)
            case "Invert": ours = ImageOps.invert(input)
            case "Posterize": ours = ImageOps.posterize(input, bits: Int(a[0].number))
            case "Solarize": ours = ImageOps.solarize(input, threshold: Int(a[0].number))
            case "SolarizeAdd": ours = ImageOps.solarizeAdd(input, add: Int(a[0].number))
            case "Color": ours = ImageOps.color(input, factor: a[0].number)
            case "Contrast": ours = ImageOps.contrast(input, factor: a[0].number)
            case "Brightness": ours = ImageOps.brightness(input, factor: a[0].number)
            case "Sharpness": ours = ImageOps.sharpness(input, factor: a[0].number)
            case "Rotate": ours = ImageOps.rotate(input, degrees: a[0].number, filter: a[1].filter, fill: fill)
            case "ShearX": ours = ImageOps.shearX(input, factor: a[0].number, filter: a[1].filter, fill: fill)
            case "ShearY": ours = ImageOps.shearY(input, factor: a[0].number, filter: a[1].filter, fill: fill)
            case "TranslateX": ours = ImageOps.translate(input, dx: a[0].number, dy: 0, filter: a[1].filter, fill: fill)
            case "TranslateY": ours = ImageOps.translate(input, dx: 0, dy: a[0].number, filter: a[1].filter, fill: fill)
            default: XCTFail("unknown op \(c.op)"); continue
            }
            let theirs = [UInt8](Data(base64Encoded: c.output)!)
            XCTAssertEqual(ours.pixels.count, theirs.count)
            let diffs = zip(ours.pixels, theirs).map { abs(Int($0) - Int($1)) }
            let geometric = ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"].contains(c.op)
            if geometric {
                // Same sampling as Pillow (pixel centres, a = −1 cubic, truncation); float vs
                // Pillow's double arithmetic flips a level where a value sits on an integer.
                let exact = diffs.filter { $0 == 0 }.count
                XCTAssertGreaterThanOrEqual(Double(exact) / Double(diffs.count), 0.94, "\(c.op) \(a[0].number): \(exact)/\(diffs.count) exact")
                XCTAssertLessThanOrEqual(diffs.max()!, 2, "\(c.op) \(a[0].number)")
            } else {
                XCTAssertEqual(diffs.max(), 0, "\(c.op) \(a): max |Δ| \(diffs.max()!), \(diffs.filter { $0 > 0 }.count) pixels differ")
            }
        }
    }

    func testConfigStringsFollowTimm() throws {
        let ra = try RandAugment(config: "rand-m9-mstd0.5-inc1")
        XCTAssertEqual(ra.magnitude, 9); XCTAssertEqual(ra.magnitudeStd, 0.5); XCTAssertEqual(ra.layers, 2)
        XCTAssertEqual(ra.probability, 0.5); XCTAssertEqual(ra.ops, RandAugment.increasingOps)
        let b = try RandAugment(config: "rand-m7-n3-mstd101-p0.8-mmax12")
        XCTAssertEqual(b.layers, 3); XCTAssertEqual(b.magnitudeStd, .infinity); XCTAssertEqual(b.probability, 0.8)
        XCTAssertEqual(b.magnitudeMax, 12); XCTAssertEqual(b.ops, RandAugment.standardOps)
        XCTAssertEqual(RandAugment.standardOps.count, 15)
        for bad in ["autoaug-m9", "rand-q3", "rand-m", "rand-p1.5", "rand-mx"] {
            XCTAssertThrowsError(try RandAugment(config: bad), bad) { XCTAssertTrue("\($0)".contains(bad), "\($0)") }
        }
    }

    func testPolicyDrawsOpsAndAppliesEachWithItsProbability() throws {
        let im = Image(width: 16, height: 12, pixels: (0..<(16 * 12 * 3)).map { UInt8(($0 * 37) % 256) })
        // p = 0: the identity; n = 0: the identity.
        var rng = RandomGenerator(seed: 1)
        XCTAssertEqual(try RandAugment(config: "rand-m9-p0").apply(im, rng: &rng), im)
        XCTAssertEqual(try RandAugment(config: "rand-m9-n0-p1").apply(im, rng: &rng), im)
        // Invert alone at p = 0.5, one layer: about half the images change; two layers of an
        // involution: the image changes when exactly one of the two fires (probability ½).
        var one = try RandAugment(config: "rand-m9-n1-p0.5"); one.ops = [.invert]
        var two = one; two.layers = 2
        var changedOne = 0, changedTwo = 0
        let trials = 2000
        for t in 0..<trials {
            var r = RandomGenerator(seed: 42).derived(stream: UInt64(t))
            if one.apply(im, rng: &r) != im { changedOne += 1 }
            if two.apply(im, rng: &r) != im { changedTwo += 1 }
        }
        // Binomial(2000, ½): σ ≈ 22; 5σ bounds.
        XCTAssertEqual(Double(changedOne), 1000, accuracy: 112)
        XCTAssertEqual(Double(changedTwo), 1000, accuracy: 112)
        // Reproducible from the stream; every op of the set runs on a real-sized image without trapping.
        let full = try RandAugment(config: "rand-m10-mstd0.5-inc1-p1")
        var r1 = RandomGenerator(seed: 9), r2 = RandomGenerator(seed: 9)
        XCTAssertEqual(full.apply(im, rng: &r1), full.apply(im, rng: &r2))
        for op in RandAugment.Op.allCases {
            for m in [0.0, 5, 10] {
                var r = RandomGenerator(seed: 3)
                let out = RandAugment.apply(op, magnitude: m, to: im, rng: &r, fill: (1, 2, 3), filter: nil)
                XCTAssertEqual(out.pixels.count, im.pixels.count, "\(op) m=\(m)")
            }
        }
        // Magnitude 10 on the increasing set keeps 0 bits (black) and solarises everything.
        var r = RandomGenerator(seed: 3)
        XCTAssertEqual(Set(RandAugment.apply(.posterizeIncreasing, magnitude: 10, to: im, rng: &r, fill: (0, 0, 0), filter: nil).pixels), [0])
        XCTAssertEqual(RandAugment.apply(.solarizeIncreasing, magnitude: 10, to: im, rng: &r, fill: (0, 0, 0), filter: nil),
                       ImageOps.invert(im))
    }

    func testRandomErasingBoxesAndFills() throws {
        let C = 3, H = 40, W = 30
        var areas: [Double] = []
        var erasedImages = 0
        for t in 0..<400 {
            var buf = [Float](repeating: 7, count: C * H * W)
            var rng = RandomGenerator(seed: 5).derived(stream: UInt64(t))
            let boxes = buf.withUnsafeMutableBufferPointer {
                RandomErasing(probability: 0.25, mode: .const).apply(to: $0.baseAddress!, channels: C, height: H, width: W, rng: &rng)
            }
            if !boxes.isEmpty { erasedImages += 1 }
            for b in boxes {
                XCTAssertTrue(b.w < W && b.h < H && b.x + b.w <= W && b.y + b.h <= H)
                areas.append(Double(b.w * b.h) / Double(H * W))
                let aspect = Double(b.h) / Double(b.w)
                XCTAssertTrue(aspect > 0.2 && aspect < 5, "aspect \(aspect)")
                // const mode: exactly the box is zero in every channel, the rest untouched.
                let zeros = buf.filter { $0 == 0 }.count, sevens = buf.filter { $0 == 7 }.count
                XCTAssertEqual(zeros, C * b.w * b.h)
                XCTAssertEqual(sevens, C * H * W - zeros)
            }
        }
        // Binomial(400, ¼): mean 100, σ ≈ 8.7.
        XCTAssertEqual(Double(erasedImages), 100, accuracy: 40)
        // Areas within [2%, ⅓] up to rounding of the sides.
        XCTAssertGreaterThan(areas.min()!, 0.01)
        XCTAssertLessThan(areas.max()!, 0.40)
        // pixel mode: standard normal fill.
        var buf = [Float](repeating: 100, count: C * H * W)
        var rng = RandomGenerator(seed: 11)
        var boxes: [(x: Int, y: Int, w: Int, h: Int)] = []
        while boxes.isEmpty {
            boxes = buf.withUnsafeMutableBufferPointer {
                RandomErasing(probability: 1, mode: .pixel, maxCount: 3).apply(to: $0.baseAddress!, channels: C, height: H, width: W, rng: &rng)
            }
        }
        let filled = buf.filter { $0 != 100 }
        let mean = filled.reduce(0, +) / Float(filled.count)
        let variance = filled.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(filled.count)
        XCTAssertGreaterThan(filled.count, 50)
        XCTAssertEqual(mean, 0, accuracy: 0.35)
        XCTAssertEqual(variance, 1, accuracy: 0.4)
        // probability 0: untouched.
        var clean = [Float](repeating: 1, count: C * H * W)
        clean.withUnsafeMutableBufferPointer {
            _ = RandomErasing(probability: 0).apply(to: $0.baseAddress!, channels: C, height: H, width: W, rng: &rng)
        }
        XCTAssertEqual(Set(clean), [1])
    }
}
