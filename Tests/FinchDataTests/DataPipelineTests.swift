import XCTest
import Foundation
import FinchTensor
@testable import FinchData

final class DataPipelineTests: XCTestCase {
    var root: URL!
    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("finch-folder-\(UUID().uuidString)")
        let images = ImageDecoderTests.dir
        for (c, files) in [("rose", ["a.JPG", "b.jpg", "c.png"]), ("daisy", ["x.jpeg", "y.png"]), ("tulip", ["t.jpg"])] {
            let d = root.appendingPathComponent(c)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            for f in files {
                let src = images.appendingPathComponent(f.lowercased().hasSuffix("png") ? "rgb.png" : "big.jpg")
                try FileManager.default.copyItem(at: src, to: d.appendingPathComponent(f))
            }
            try Data("x".utf8).write(to: d.appendingPathComponent("notes.txt"))
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".hidden"), withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func testImageFolderSortsClassesAndFilesAndChecksInput() throws {
        let f = try ImageFolder(root: root)
        XCTAssertEqual(f.classes, ["daisy", "rose", "tulip"])
        XCTAssertEqual(f.samples.map { $0.url.lastPathComponent }, ["x.jpeg", "y.png", "a.JPG", "b.jpg", "c.png", "t.jpg"])
        XCTAssertEqual(f.classCounts, [2, 3, 1])
        let (train, val) = f.stratifiedSplit(valFraction: 0.5, seed: 1)
        XCTAssertEqual(val.count, 1 + 2 + 1)   // round(0.5·2), round(0.5·3), round(0.5·1)
        XCTAssertEqual(train.count + val.count, f.count)
        XCTAssertEqual(f.stratifiedSplit(valFraction: 0.5, seed: 1).val.samples.map(\.url), val.samples.map(\.url))
        XCTAssertThrowsError(try ImageFolder(root: root.appendingPathComponent("nope"))) { XCTAssertTrue("\($0)".contains("dataset folder not found")) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageFolder(root: root)) { XCTAssertTrue("\($0)".contains("class folder 'empty' has no")) }
    }

    /// Per-sample random streams: the same batch whatever the thread count, different each epoch.
    func testLoaderIsReproducibleAcrossThreadCountsAndEpochs() throws {
        let f = try ImageFolder(root: root)
        var t = ImageTransform(size: 16, training: true)
        t.mean = [0.5, 0.5, 0.5]
        t.std = [0.5, 0.5, 0.5]
        let loader = DataLoader(samples: f.samples, transform: t, batchSize: 4, sampler: .random, dropLast: false, seed: 3)
        XCTAssertEqual(loader.batchCount, 2)
        func epoch(_ e: Int) throws -> [Float] { try loader.batches(epoch: e).flatMap { try $0.get().images.scalars } }
        // Worker count (0: caller's thread, no prefetch) does not change a single value.
        loader.workers = 1
        let one = try epoch(0)
        loader.workers = 2
        let two = try epoch(0)
        loader.workers = 0
        let none = try epoch(0)
        loader.workers = 3
        let three = try epoch(0)
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, none)
        XCTAssertEqual(one, three)
        XCTAssertNotEqual(one, try epoch(1))
        let b = try loader.batches(epoch: 0, startingAt: 1).next()!.get()
        XCTAssertEqual(b.images.shape, [2, 3, 16, 16])
        XCTAssertTrue(b.images.scalars.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
    }

    func testEvalTransformResizesShortSideThenCentreCrops() {
        var t = ImageTransform(size: 8, training: false)
        t.cropPct = 0.5    // short side to 16, then the central 8×8
        t.mean = [0, 0, 0]
        t.std = [1, 1, 1]
        let im = Image(width: 40, height: 20, fill: (255, 0, 51))
        var rng = RandomGenerator(seed: 0)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 3 * 64)
        defer { out.deallocate() }
        t.apply(im, rng: &rng, into: out)
        XCTAssertEqual(out[0], 1, accuracy: 1e-6)
        XCTAssertEqual(out[64], 0, accuracy: 1e-6)
        XCTAssertEqual(out[128], 0.2, accuracy: 1e-6)
        // torchvision's RandomResizedCrop stays inside the image and within the scale range.
        var tt = ImageTransform(size: 8, training: true)
        tt.scale = (0.3, 0.6)
        for _ in 0..<200 {
            let (x, y, w, h) = tt.randomResizedCropBox(width: 40, height: 20, rng: &rng)
            XCTAssertTrue(x >= 0 && y >= 0 && x + w <= 40 && y + h <= 20)
        }
    }

    /// A sampler with replacement draws one image many times; every draw gets its own crop and
    /// jitter, as every `__getitem__` call does in PyTorch (streams keyed by position, not image).
    func testRepeatedDrawsOfOneImageAreAugmentedIndependently() throws {
        let f = try ImageFolder(root: root)
        var t = ImageTransform(size: 16, training: true)
        t.scale = (0.1, 0.5)
        let weights = f.samples.indices.map { $0 == 0 ? 1.0 : 0.0 }    // only image 0 can be drawn
        let loader = DataLoader(samples: f.samples, transform: t, batchSize: 4,
                                sampler: .weighted(weights: weights, numSamples: 4, replacement: true), dropLast: false, seed: 3)
        let x = try XCTUnwrap(loader.batches(epoch: 0).next()).get().images.scalars
        let n = 3 * 16 * 16
        let draws = (0..<4).map { Array(x[($0 * n)..<(($0 + 1) * n)]) }
        XCTAssertEqual(Set(draws.map { $0.map(\.bitPattern) }).count, 4, "four draws of one image, four different augmentations")
    }

    /// JPEGs are only decoded at a reduced DCT scale when the pipeline would shrink the result at
    /// least 2× anyway (torchvision decodes at full size): the smallest crop's side, twice, in training.
    func testDecodeShortSideLeavesTwofoldMargin() {
        var t = ImageTransform(size: 128, training: true)
        t.scale = (0.25, 1)
        XCTAssertEqual(t.decodeShortSide, 512)
        t.scale = (0, 1)
        XCTAssertEqual(t.decodeShortSide, Int(Int32.max))
        var e = ImageTransform(size: 128, training: false)
        e.cropPct = 0.875
        XCTAssertEqual(e.decodeShortSide, 292)
    }

    /// torchvision's CenterCrop offset is Python's round((h − size)/2): 13 − 4 = 9 → 4.5 → 4 (half to
    /// even), where rounding half up would start a row lower.
    func testCentreCropRoundsHalfToEvenLikeTorchvision() {
        var t = ImageTransform(size: 4, training: false)
        t.cropPct = 1
        t.mean = [0, 0, 0]
        t.std = [1, 1, 1]
        t.evalInterpolation = "bilinear"
        var pixels = [UInt8]()
        for y in 0..<13 { for _ in 0..<4 { pixels += [UInt8(y * 10), 0, 0] } }
        var rng = RandomGenerator(seed: 0)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 3 * 16)
        defer { out.deallocate() }
        t.apply(Image(width: 4, height: 13, pixels: pixels), rng: &rng, into: out)
        XCTAssertEqual(out[0] * 255, 40, accuracy: 1e-3, "first row kept is row 4")
        XCTAssertEqual(out[12] * 255, 70, accuracy: 1e-3, "last row kept is row 7")
    }

    /// RandomResizedCrop resamples the crop alone, as torchvision's resized_crop does (crop, then
    /// resize): pixels outside the drawn box never reach the output, which is the cropped image
    /// through Resample (Pillow's resize, ResampleTests).
    func testRandomResizedCropResamplesTheCropAlone() throws {
        let w = 40, h = 30, size = 24
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for i in px.indices { px[i] = UInt8((i * 29 + i / 7) % 256) }
        var t = ImageTransform(size: size, training: true)
        t.scale = (0.2, 0.5)
        t.hflip = 0
        t.colorJitter = 0
        t.mean = [0, 0, 0]
        t.std = [1, 1, 1]
        var boxRng = RandomGenerator(seed: 3)
        let (x, y, bw, bh) = t.randomResizedCropBox(width: w, height: h, rng: &boxRng)
        XCTAssertTrue(bw < w && bh < h, "the box \((x, y, bw, bh)) must leave pixels outside it")
        var other = px
        for yy in 0..<h {
            for xx in 0..<w where !(x..<x + bw).contains(xx) || !(y..<y + bh).contains(yy) {
                for c in 0..<3 { other[(yy * w + xx) * 3 + c] = 255 &- px[(yy * w + xx) * 3 + c] }
            }
        }
        var out = [Float](repeating: 0, count: 3 * size * size), outOther = out
        var r1 = RandomGenerator(seed: 3), r2 = RandomGenerator(seed: 3)
        out.withUnsafeMutableBufferPointer { t.apply(Image(width: w, height: h, pixels: px), rng: &r1, into: $0.baseAddress!) }
        outOther.withUnsafeMutableBufferPointer { t.apply(Image(width: w, height: h, pixels: other), rng: &r2, into: $0.baseAddress!) }
        XCTAssertEqual(zip(out, outOther).filter { $0 != $1 }.count, 0, "pixels outside the crop box changed the output")
        let cropped = t.crop(Image(width: w, height: h, pixels: px), x: x, y: y, width: bw, height: bh)
        let expected = Resample.resize(cropped, width: size, height: size, filter: .bicubic)
        var differing = 0
        for i in 0..<(size * size) {
            for c in 0..<3 where abs(out[c * size * size + i] * 255 - Float(expected.pixels[i * 3 + c])) > 1e-3 { differing += 1 }
        }
        XCTAssertEqual(differing, 0, "values differing from the crop resampled on its own")
    }

    /// Class-balanced weights: counts 1200/800/300 drawn at equal rates (binomial sd ≈ 0.0027 for
    /// 30,000 draws; 0.015 is over 5 sd).
    func testWeightedSamplerBalancesClasses() throws {
        let labels = Array(repeating: 0, count: 1200) + Array(repeating: 1, count: 800) + Array(repeating: 2, count: 300)
        let s = Sampler.weighted(weights: Sampler.classBalancedWeights(labels: labels), numSamples: 30_000, replacement: true)
        let draws = try s.indices(count: labels.count, epoch: 0, seed: 5)
        var freq = [0, 0, 0]
        for d in draws { freq[labels[d]] += 1 }
        for c in 0..<3 { XCTAssertEqual(Double(freq[c]) / 30_000, 1.0 / 3.0, accuracy: 0.015, "class \(c): \(freq)") }
        XCTAssertEqual(try Sampler.random.indices(count: 10, epoch: 2, seed: 1).sorted(), Array(0..<10))
        XCTAssertNotEqual(try Sampler.random.indices(count: 10, epoch: 2, seed: 1), try Sampler.random.indices(count: 10, epoch: 3, seed: 1))
    }

    /// PIL's Image.resize(BICUBIC) of the fixture pattern to 3×2 (computed with PIL 13): antialiased downscale.
    func testResizeMatchesPIL() throws {
        let im = try ImageDecoder.decode(contentsOf: ImageDecoderTests.dir.appendingPathComponent("rgb.png"))
        let r = Resample.resize(im, width: 3, height: 2, filter: .bicubic)
        XCTAssertEqual(r.width, 3)
        XCTAssertEqual(r.pixels, pilBicubic3x2)
    }
}
let pilBicubic3x2: [UInt8] = [22, 35, 184, 100, 35, 125, 178, 35, 66, 22, 145, 184, 100, 145, 125, 178, 145, 66]
