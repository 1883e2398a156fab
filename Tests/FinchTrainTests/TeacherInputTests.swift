import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchIO
@testable import FinchTrain

/// The teacher of a distillation run at its own resolution (`distill.teacher.image_size`): what it
/// receives agrees with the timm side of the results table (Experiments/timm_reference.py), and it
/// stays as loaded however long the student trains.
final class TeacherInputTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/distill/teacher_input_lite0_16to28.safetensors").standardized

    /// Written by Tests/Fixtures/tools/make_teacher_input_reference.py with timm_reference.py's own
    /// `teacher_input` (F.interpolate, bilinear, align_corners=False): a 16-px batch to 28 px, the
    /// table's 128 → 224 ratio, then a procedural Lite0 teacher in eval mode.
    func testTeacherInputAndLogitsMatchTheTimmSide() throws {
        let st = try SafeTensorsFile(contentsOf: Self.fixture)
        let x = try st.tensor("input")
        XCTAssertEqual(x.scalars, ProceduralWeights.input(batch: 2, resolution: 16).scalars, "the fixture's batch is the procedural one")
        let lite = (mean: [Float](repeating: 0.5, count: 3), std: [Float](repeating: 0.5, count: 3))
        let resized = Distillation.teacherInput(x, from: lite, to: lite, imageSize: 28)
        let expected = try st.tensor("resized")
        XCTAssertEqual(resized.shape, [2, 3, 28, 28])
        // PyTorch's float32 resize is itself `noise.resized` (3·10⁻⁶) from float64: Finch within that
        // of float64 is within twice that of PyTorch's float32.
        let resizeNoise = Float(try st.tensor("noise.resized").scalars[0])
        let resizeError = zip(resized.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(resizeError, 2 * resizeNoise, "teacher input vs F.interpolate(bilinear, align_corners=False)")

        let teacher = try ModelRegistry.create("tf_efficientnet_lite0", numClasses: 5)
        try ProceduralWeights.fill(teacher)
        teacher.eval()
        let logits = noGrad { teacher(resized) }
        let truth = try st.tensor("f64.logits"), noise = Double(try st.tensor("noise.logits").scalars[0])
        XCTAssertEqual(logits.shape, [2, 5])
        let error = zip(logits.scalars, truth.scalars).map { Double(abs($0 - $1)) }.max() ?? .infinity
        // PyTorch's float32 lands `noise` from float64; Finch's float32 is another order of the same
        // sums, allowed a few times that (and the float64 truth's rounding to Float, 3·10⁻⁸ here).
        XCTAssertLessThanOrEqual(error, 8 * noise + 1e-7, "teacher logits vs timm's float64 (PyTorch float32 noise \(noise))")
        // The samples' logits differ by about 10⁻³ while the tolerance is about 10⁻⁶: a teacher fed
        // the wrong pixels (unresized, or resized another way) would not pass.
        let unresized = noGrad { teacher(x) }
        XCTAssertGreaterThan(zip(unresized.scalars, truth.scalars).map { Double(abs($0 - $1)) }.max() ?? 0, 100 * (8 * noise + 1e-7))
    }

    /// The teacher runs in eval mode under noGrad: after a run its weights and BatchNorm statistics
    /// are the loaded ones, no gradient reached it, and it saw batches at its own size.
    func testTeacherAtItsOwnSizeStaysFrozen() throws {
        let c = try TrainConfig.parse("""
        seed: 3
        data: {root: unused, batch_size: 8}
        model: {name: tiny}
        optimizer: {name: adamw, lr: 0.01}
        schedule: {name: cosine, epochs: 2, warmup_epochs: 0}
        distill: {teacher: {name: tiny, checkpoint: unused.h5, image_size: 12, view: resized}, kind: soft, alpha: 0.5, temperature: 2}
        """, source: "teacher.yaml")
        var rng = RandomGenerator(seed: 1)
        let student = TinyClassifier(numClasses: 3), teacher = TinyClassifier(numClasses: 3)
        student.initializeWeights(using: &rng)
        teacher.initializeWeights(using: &rng)
        let before = teacher.namedParameters().map { ($0.name, $0.tensor.scalars) } + teacher.namedBuffers().map { ($0.name, $0.tensor.scalars) }
        let x = Tensor.normal([16, 3, 8, 8], using: &rng), y = (0..<16).map { $0 % 3 }
        let data = InMemoryBatches(images: x, labels: y, classes: ["r", "g", "b"], batchSize: 8)
        let trainer = try Trainer(config: c, model: student, train: data, val: data, teacher: teacher)
        trainer.progress = ProgressReporter(isTerminal: false)
        let studentBefore = student.parameters.map(\.scalars)
        try trainer.fit()

        XCTAssertNotEqual(student.parameters.map(\.scalars), studentBefore, "the student trained")
        let after = teacher.namedParameters().map { ($0.name, $0.tensor.scalars) } + teacher.namedBuffers().map { ($0.name, $0.tensor.scalars) }
        XCTAssertEqual(after.map(\.0), before.map(\.0))
        for ((name, a), (_, b)) in zip(after, before) { XCTAssertEqual(a, b, "teacher's \(name) changed") }
        XCTAssertTrue(teacher.parameters.allSatisfy { $0.grad == nil }, "a gradient reached the teacher")
        XCTAssertFalse(teacher.isTraining, "the teacher is in eval mode (BatchNorm on its running statistics)")
    }
}
