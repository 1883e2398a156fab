import XCTest
import Foundation
import FinchTensor
@testable import FinchData

/// Transform and sampler parameters out of range are refused with timm's parameter names, before
/// any image is decoded; in range they are accepted as before.
final class TransformParameterTests: XCTestCase {
    func assertRefused<T>(_ body: @autoclosure () throws -> T, _ parts: String..., line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(p)' not in: \(e)", line: line) }
        }
    }

    func testRandAugmentSpecs() throws {
        let ra = try RandAugment(config: "rand-m9-mstd0.5-inc1")
        XCTAssertEqual([ra.magnitude, ra.magnitudeStd], [9, 0.5])
        XCTAssertEqual(ra.ops, RandAugment.increasingOps)
        XCTAssertEqual(try RandAugment(config: "rand-mstd101-m9").magnitudeStd, .infinity, "timm: mstd > 100 is uniform")
        XCTAssertEqual(try RandAugment(config: "rand-m15-mmax20-n3-p1").magnitude, 15)
        let bad: [(String, String)] = [
            ("rand-m11", "m = 11.0"), ("rand-m1e400", "not a finite number"), ("rand-n100", "more than 16"),
            ("rand-n2.5", "whole number"), ("rand-mstd-1", "'mstd' has no value"), ("rand-inc2", "inc must be 0 or 1"),
            ("rand-w0", "unknown section 'w'"), ("rand--m9", "empty section"), ("rand-m9-", "empty section"),
            ("rand-p1.5", "p must be in [0, 1]"), ("rand-mmax40", "mmax = 40.0"), ("augmix-m5", "only RandAugment"),
        ]
        for (spec, reason) in bad {
            assertRefused(try RandAugment(config: spec), "auto_augment '\(spec)'", reason)
        }
        var set = RandAugment()
        set.magnitudeStd = .nan
        assertRefused(try set.validate(), "mstd")
        for m in [Double.nan, 1e300, -1] {
            set = RandAugment()
            set.magnitude = m
            assertRefused(try set.validate(), "auto_augment m = ")
        }
        assertRefused(try RandAugment(config: "rand-m12"), "mmax12")
        set = RandAugment()
        set.layers = -1
        assertRefused(try set.validate(), "auto_augment n = -1")
    }

    func testImageTransformRanges() throws {
        var ok = ImageTransform(size: 224, training: true)
        ok.randAugment = try RandAugment(config: "rand-m9-mstd0.5")
        ok.randomErasing = RandomErasing(probability: 0.25, mode: .pixel, maxCount: 3)
        XCTAssertNoThrow(try ok.validate())
        XCTAssertNoThrow(try ImageTransform(size: 1, training: false).validate())
        let cases: [(String, (inout ImageTransform) -> Void)] = [
            ("img_size = 0", { $0.size = 0 }), ("img_size = 5000", { $0.size = 5000 }),
            ("scale = (0.0, 1.0)", { $0.scale = (0, 1) }), ("scale = (0.5, 0.2)", { $0.scale = (0.5, 0.2) }),
            ("scale = (0.08, 1.5)", { $0.scale = (0.08, 1.5) }), ("scale = (nan, 1.0)", { $0.scale = (.nan, 1) }),
            ("ratio = (-1.0, 1.0)", { $0.ratio = (-1, 1) }), ("ratio = (2.0, 1.0)", { $0.ratio = (2, 1) }),
            ("ratio = (0.75, inf)", { $0.ratio = (0.75, .infinity) }),
            ("crop_pct = 0.0", { $0.cropPct = 0 }), ("crop_pct = 1.5", { $0.cropPct = 1.5 }), ("crop_pct = nan", { $0.cropPct = .nan }),
            ("crop_pct = 1e-300", { $0.cropPct = 1e-300 }),
            ("mean = [0.5, 0.5]", { $0.mean = [0.5, 0.5] }), ("mean = [nan", { $0.mean = [.nan, 0, 0] }),
            ("std = [0.0", { $0.std = [0, 1, 1] }), ("std = [-1.0", { $0.std = [-1, 1, 1] }), ("std = [inf", { $0.std = [.infinity, 1, 1] }),
            ("hflip = 2.0", { $0.hflip = 2 }), ("vflip = nan", { $0.vflip = .nan }), ("color_jitter = -0.1", { $0.colorJitter = -0.1 }),
            ("interpolation = 'nearest'", { $0.interpolation = "nearest" }),
            ("re_prob = 1.5", { $0.randomErasing = RandomErasing(probability: 1.5) }),
            ("re_count = 0", { $0.randomErasing = RandomErasing(probability: 0.5, maxCount: 0) }),
            ("re_count = 1000", { $0.randomErasing = RandomErasing(probability: 0.5, maxCount: 1000) }),
            ("min_area, max_area = (0.5, 0.4)", { $0.randomErasing = RandomErasing(probability: 0.5); $0.randomErasing!.minArea = 0.5; $0.randomErasing!.maxArea = 0.4 }),
            ("min_aspect = 0.0", { $0.randomErasing = RandomErasing(probability: 0.5); $0.randomErasing!.minAspect = 0 }),
            ("auto_augment m = 12.0", { $0.randAugment = RandAugment(); $0.randAugment!.magnitude = 12 }),
        ]
        for (message, change) in cases {
            var t = ok
            change(&t)
            assertRefused(try t.validate(), message)
        }
    }

    /// The loader validates before decoding: a crop_pct of 0 used to reach Int(infinity) and trap.
    func testLoaderRefusesABadTransformBeforeDecoding() throws {
        var t = ImageTransform(size: 8, training: false)
        t.cropPct = 0
        XCTAssertEqual(t.decodeShortSide, Int(Int32.max), "no trap on a bad crop_pct")
        let loader = DataLoader(samples: [(ImageDecoderTests.dir.appendingPathComponent("rgb.png"), 0)], transform: t,
                                batchSize: 1, sampler: .sequential, dropLast: false, seed: 1)
        loader.workers = 0
        assertRefused(try loader.batches(epoch: 0), "crop_pct = 0.0")
        assertRefused(try loader.batch(0, of: [0], epoch: 0), "crop_pct = 0.0")
        var tiny = ImageTransform(size: 8, training: true)
        tiny.scale = (5e-324, 1)
        XCTAssertEqual(tiny.decodeShortSide, Int(Int32.max))
    }

    func testLoaderAppliesImageLimits() throws {
        let loader = DataLoader(samples: [(ImageDecoderTests.dir.appendingPathComponent("rgb.png"), 0)],
                                transform: ImageTransform(size: 4, training: false), batchSize: 1, sampler: .sequential,
                                dropLast: false, seed: 1)
        loader.workers = 0
        XCTAssertNoThrow(try loader.batch(0, of: [0], epoch: 0))
        assertRefused(try loader.batch(1, of: [0], epoch: 0), "batch index = 1")
        assertRefused(try loader.batch(-1, of: [0], epoch: 0), "batch index = -1")
        assertRefused(try loader.batch(0, of: [3], epoch: 0), "sample index = 3")
        assertRefused(try loader.batches(epoch: 0, startingAt: -2).next()!.get(), "batch index = -2")
        loader.imageLimits = try ImageLimits(maxPixels: 10)
        assertRefused(try loader.batch(0, of: [0], epoch: 0), "rgb.png", "6×4", "budget of 10")
    }

    func testWeightedSamplerParameters() throws {
        func weighted(_ w: [Double], _ n: Int, _ r: Bool = true) -> Sampler { .weighted(weights: w, numSamples: n, replacement: r) }
        XCTAssertEqual(try weighted([1, 0, 2], 5).indices(count: 3, epoch: 0, seed: 1).count, 5)
        let cases: [(Sampler, Int, String)] = [
            (weighted([1, 1], 0), 2, "num_samples = 0"), (weighted([1, 1], -3), 2, "num_samples = -3"),
            (weighted([1, 1], Sampler.maxNumSamples + 1), 2, "num_samples = 100000001"),
            (weighted([1, 1], 2), 3, "weights = 2 weights: the dataset has 3 samples"),
            (weighted([1, .nan], 2), 2, "weights[1] = nan"), (weighted([1, -1], 2), 2, "weights[1] = -1.0"),
            (weighted([0, 0], 2), 2, "the sum must be finite and > 0"), (weighted([1e308, 1e308], 2), 2, "sum inf"),
            (weighted([1, 0, 1], 3, false), 3, "more than the 2 samples of positive weight"),
        ]
        for (s, count, message) in cases {
            assertRefused(try s.indices(count: count, epoch: 0, seed: 1), message)
        }
    }
}
