import XCTest
import Foundation
import FinchTensor
import FinchData
import FinchNN
import FinchTestSupport
@testable import FinchTrain

/// `distill.teacher.view: own`: the teacher sees each training photo rendered at its own size with
/// the student's augmentation draws, mixed by the student's MixUp/CutMix draws.
final class TeacherViewTests: XCTestCase {
    static let photo = TinyImageFolder.images.appendingPathComponent("baseline.jpg")
    let half = [Float](repeating: 0.5, count: 3)

    func studentTransform(randAugment: Bool) throws -> ImageTransform {
        var t = ImageTransform(size: 16, training: true)
        t.scale = (0.25, 1)
        t.hflip = 0.5
        t.interpolation = "random"
        t.colorJitter = 0.4
        if randAugment { t.randAugment = try RandAugment(config: "rand-m9-mstd0.5-inc1-p0.9") }
        return t
    }

    /// The loader's second view is, bit for bit, the student's transform run at the teacher's size
    /// (and statistics) on the same decoded photo with the draw's own stream; the first view is
    /// the student's transform on that stream, as without a second view.
    func testOwnViewIsTheStudentTransformAtTheTeacherSize() throws {
        for randAugment in [false, true] {
            let student = try studentTransform(randAugment: randAugment)
            let teacher = Distillation.teacherTransform(student: student, size: 28, mean: half, std: half)
            let n = 6, seed: UInt64 = 11, epoch = 1
            let loader = DataLoader(samples: Array(repeating: (Self.photo, 0), count: n), transform: student, batchSize: n,
                                    sampler: .sequential, dropLast: false, seed: seed)
            loader.workers = 2
            loader.secondView = teacher
            let v = try loader.views(0, of: Array(0..<n), epoch: epoch)
            let second = try XCTUnwrap(v.secondImages)
            XCTAssertEqual(second.shape, [n, 3, 28, 28])
            let im = try ImageDecoder.decode(contentsOf: Self.photo, targetShortSide: max(student.decodeShortSide, teacher.decodeShortSide),
                                             limits: .standard)
            var studentDraws: [[Float]] = []
            for k in 0..<n {
                let stream = RandomGenerator(seed: seed).derived(stream: UInt64(epoch) << 32 | UInt64(k))
                var (rs, rt) = (stream, stream)
                let s = [Float](unsafeUninitializedCapacity: 3 * 16 * 16) { p, c in student.apply(im, rng: &rs, into: p.baseAddress!); c = 3 * 16 * 16 }
                let t = [Float](unsafeUninitializedCapacity: 3 * 28 * 28) { p, c in teacher.apply(im, rng: &rt, into: p.baseAddress!); c = 3 * 28 * 28 }
                // (XCTAssertTrue: a failure would otherwise print thousands of floats.)
                XCTAssertTrue(Array(v.images.scalars[(k * s.count)..<((k + 1) * s.count)]) == s, "student view \(k), RandAugment \(randAugment)")
                XCTAssertTrue(Array(second.scalars[(k * t.count)..<((k + 1) * t.count)]) == t, "teacher view \(k), RandAugment \(randAugment)")
                // Both renderings used up the same draws: no draw depended on the output size.
                XCTAssertEqual(rs.state, rt.state, "draws consumed, view \(k), RandAugment \(randAugment)")
                studentDraws.append(s)
            }
            XCTAssertEqual(Set(studentDraws.map { $0.map(\.bitPattern) }).count, n, "each draw is augmented differently")
            // Not the student's batch resized: the teacher's pixels come from the photo itself.
            let resized = Distillation.teacherInput(v.images, from: (student.mean, student.std), to: (half, half), imageSize: 28)
            XCTAssertGreaterThan(zip(resized.scalars, second.scalars).map { abs($0 - $1) }.max() ?? 0, 0.01)
        }
    }

    /// Many draws, every op of RandAugment's set in play: the student and teacher renderings
    /// consume their streams identically.
    func testNoDrawDependsOnTheOutputSize() throws {
        let student = try studentTransform(randAugment: true)
        var all = student
        all.randAugment?.magnitudeStd = .infinity
        all.randAugment?.layers = 4
        all.randAugment?.probability = 1
        let teacher = Distillation.teacherTransform(student: all, size: 37, mean: half, std: half)
        let im = try ImageDecoder.decode(contentsOf: Self.photo, targetShortSide: teacher.decodeShortSide, limits: .standard)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 3 * 37 * 37)
        defer { out.deallocate() }
        for k in 0..<40 {
            var rs = RandomGenerator(seed: 5).derived(stream: UInt64(k)), rt = rs
            all.apply(im, rng: &rs, into: out)
            teacher.apply(im, rng: &rt, into: out)
            XCTAssertEqual(rs.state, rt.state, "draw \(k)")
        }
    }

    /// CutMix boxes scale edge by edge to the nearest pixel, halves up; λ stays the student's.
    func testCutMixBoxScaling() {
        let d = [Mixup.Draw(lam: 0.7, box: (yl: 3, yh: 9, xl: 0, xh: 16)), Mixup.Draw(lam: 0.4), Mixup.Draw(lam: 0.5, box: (yl: 2, yh: 5, xl: 1, xh: 7))]
        let s = Mixup.scaled(d, from: (16, 16), to: (28, 28))
        // 3·1.75 = 5.25 → 5, 9·1.75 = 15.75 → 16, 16 → 28; 2·1.75 = 3.5 → 4 (half up), 5·1.75 = 8.75 → 9, 7·1.75 = 12.25 → 12.
        XCTAssertEqual(s, [Mixup.Draw(lam: 0.7, box: (5, 16, 0, 28)), Mixup.Draw(lam: 0.4), Mixup.Draw(lam: 0.5, box: (4, 9, 2, 12))])
        XCTAssertEqual(Mixup.scaled(d, from: (16, 16), to: (16, 16)), d, "same size: same boxes")
    }

    /// The mixer draws once: the student's batch and targets are what `mix` gives on the same stream,
    /// and the teacher's batch is mixed by the same permutation, λ and (scaled) box.
    func testMixerMixesTheTeacherViewWithTheStudentsDraws() throws {
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.normal([4, 3, 16, 16], using: &rng), t = Tensor.normal([4, 3, 28, 28], using: &rng), y = [0, 1, 2, 1]
        for (mixupAlpha, cutmixAlpha) in [(0.0, 1.0), (0.4, 0.0)] {
            let m = Mixup(mixupAlpha: mixupAlpha, cutmixAlpha: cutmixAlpha, mode: .elem, numClasses: 3)
            let a = MixupMixer(m, seed: 9), b = MixupMixer(m, seed: 9)
            let plain = a.mix(Batch(images: x, labels: y), numClasses: 3)
            let views = b.mixViews(Batch(images: x, labels: y, teacherImages: t), numClasses: 3)
            XCTAssertEqual(views.images.scalars, plain.images.scalars)
            XCTAssertEqual(views.targets.scalars, plain.targets.scalars)
            XCTAssertEqual(a.randomState, b.randomState, "one draw, as without a teacher view")
            var r = RandomGenerator(seed: 9)
            let draws = m.draw(batchSize: 4, height: 16, width: 16, using: &r)
            XCTAssertTrue(draws.contains { $0.lam != 1 }, "something was mixed")
            let expected = m.applyScaled(draws, from: (16, 16), images: t)
            XCTAssertEqual(try XCTUnwrap(views.teacherImages).scalars, expected.scalars)
            XCTAssertNotEqual(expected.scalars, t.scalars)
        }
    }

    func testConfigKey() throws {
        let base = "data: {root: d, image_size: 128}\nmodel: {name: m}\ndistill: {teacher: {name: t, checkpoint: c.h5, image_size: 224}}\n"
        XCTAssertEqual(try TrainConfig.parse(base, source: "t.yaml").distill?.teacher.view, .own, "own is the default")
        XCTAssertEqual(try TrainConfig.parse(base, source: "t.yaml", overrides: ["distill.teacher.view=resized"]).distill?.teacher.view, .resized)
        XCTAssertThrowsError(try TrainConfig.parse(base, source: "t.yaml", overrides: ["distill.teacher.view=native"])) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "distill.teacher.view")
        }
        // Without another size the key does nothing, and says so (a value other than the default).
        XCTAssertThrowsError(try TrainConfig.parse(base, source: "t.yaml", overrides: ["distill.teacher.image_size=128", "distill.teacher.view=resized"])) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "distill.teacher.view")
            XCTAssertTrue("\($0)".contains("has no effect here"), "\($0)")
        }
        // Random erasing draws its boxes from the image size: refused with own, allowed with resized.
        XCTAssertThrowsError(try TrainConfig.parse(base, source: "t.yaml", overrides: ["data.re_prob=0.25"])) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "distill.teacher.view")
            XCTAssertTrue("\($0)".contains("random erasing"), "\($0)")
        }
        XCTAssertNoThrow(try TrainConfig.parse(base, source: "t.yaml", overrides: ["data.re_prob=0.25", "distill.teacher.view=resized"]))
    }

    /// Through the trainer: the teacher is fed the loader's own rendering, CutMix-ed by the draw
    /// that mixed the student's batch, never the student's batch resized.
    func testTrainerFeedsTheTeacherItsOwnMixedView() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-tview-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyImageFolder.make(under: dir)
        let folder = try ImageFolder(root: dir.appendingPathComponent("data/train"))
        let c = try TrainConfig.parse("""
        seed: 3
        data: {root: unused, batch_size: 3, image_size: 8}
        model: {name: tiny}
        optimizer: {name: adamw, lr: 0.01}
        schedule: {name: cosine, epochs: 1, warmup_epochs: 0}
        mixup: {cutmix_alpha: 1.0}
        distill: {teacher: {name: tiny, checkpoint: unused.h5, image_size: 12}, kind: soft, alpha: 0.5, temperature: 2}
        """, source: "teacher.yaml")
        var student = ImageTransform(size: 8, training: true)
        student.scale = (0.25, 1)
        student.mean = half
        student.std = half
        func loader() -> DataLoader {
            let l = DataLoader(samples: folder.samples, transform: student, batchSize: 3, sampler: .random, dropLast: false, seed: 7)
            l.workers = 0
            l.secondView = Distillation.teacherTransform(student: student, size: 12, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
            return l
        }
        var rng = RandomGenerator(seed: 1)
        let model = TinyClassifier(numClasses: 2), teacher = RecordingTeacher(numClasses: 2)
        model.initializeWeights(using: &rng)
        teacher.initializeWeights(using: &rng)
        let mixup = Mixup(mixupAlpha: 0, cutmixAlpha: 1, numClasses: 2)
        let trainer = try Trainer(config: c, model: model, train: LoaderBatchSource(loader: loader(), classes: folder.classes), val: nil,
                                  teacher: teacher, mixer: MixupMixer(mixup, seed: 5))
        trainer.studentNormalization = (half, half)
        trainer.progress = ProgressReporter(isTerminal: false)
        try trainer.fit()

        XCTAssertEqual(teacher.seen.count, 2)
        let replay = MixupMixer(mixup, seed: 5)
        let batches = try loader().viewBatches(epoch: 0)
        for (k, seen) in teacher.seen.enumerated() {
            let b = try XCTUnwrap(batches.next()).get()
            let mixed = replay.mixViews(Batch(images: b.images, labels: b.labels, teacherImages: b.secondImages), numClasses: 2)
            XCTAssertEqual(seen.shape, [3, 3, 12, 12])
            XCTAssertTrue(seen.scalars == mixed.teacherImages?.scalars, "batch \(k): the teacher's own view, mixed by the student's draw")
            XCTAssertFalse(seen.scalars == (b.secondImages?.scalars ?? []), "batch \(k): CutMix reached the teacher's view")
        }
    }

    /// A batch source without the teacher's rendering cannot serve `own`: refused before training.
    func testOwnViewWithoutATeacherRenderingIsRefused() throws {
        let c = try TrainConfig.parse("""
        data: {root: unused, batch_size: 4, image_size: 8}
        model: {name: tiny}
        distill: {teacher: {name: tiny, checkpoint: unused.h5, image_size: 12}}
        """, source: "teacher.yaml")
        var rng = RandomGenerator(seed: 1)
        let student = TinyClassifier(numClasses: 3), teacher = TinyClassifier(numClasses: 3)
        let data = InMemoryBatches(images: Tensor.normal([4, 3, 8, 8], using: &rng), labels: [0, 1, 2, 0], classes: ["r", "g", "b"], batchSize: 4)
        XCTAssertThrowsError(try Trainer(config: c, model: student, train: data, val: nil, teacher: teacher)) {
            XCTAssertTrue("\($0)".contains("distill.teacher.view is own, but the training batches carry no teacher view"), "\($0)")
        }
    }
}

/// TinyClassifier's layers, recording what it is fed.
final class RecordingTeacher: ImageClassifier {
    let convStem = Conv2d(3, 8, kernelSize: 3, stride: 2, bias: false)
    let pool = GlobalAvgPool()
    let classifier: Linear
    var seen: [Tensor] = []

    init(numClasses: Int) {
        classifier = Linear(8, numClasses)
        super.init(modelName: "tiny", numClasses: numClasses, pretrainedConfig: .imagenet)
        register("conv_stem", convStem)
        register("classifier", classifier)
    }

    override func forwardFeatures(_ x: Tensor) -> Tensor {
        seen.append(x)
        return convStem(x)
    }
    override func forwardHead(_ f: Tensor, preLogits: Bool) -> Tensor { preLogits ? pool(f) : classifier(pool(f)) }
    override func initializeWeights(using rng: inout RandomGenerator) {
        Init.kaimingNormalFanOut(convStem.weight, using: &rng)
        classifier.resetParameters(using: &rng)
    }
}
