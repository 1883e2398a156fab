import XCTest
import Foundation
import FinchTestSupport
import FinchTensor
import FinchNN
import FinchIO
@testable import FinchTrain

/// Checks that need the model or the dataset: they run in `TrainingSetup`, before the first step
/// and before any run folder is made.
final class SetupChecksTests: XCTestCase {
    var base: URL!
    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("finch-checks-\(UUID().uuidString)")
        try TinyImageFolder.make(under: base)
        Trainer.stopRequest.store(false, ordering: .relaxed)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: base) }

    func yaml(_ extra: String = "", optimizer: String = "{name: adamw, lr: 1.0e-3}") -> String {
        """
        experiment: tiny
        data: {root: data, image_size: 32, batch_size: 2}
        model: {name: mobilenetv3_small_100}
        optimizer: \(optimizer)
        schedule: {epochs: 1, warmup_epochs: 0}
        \(extra)
        """
    }

    func assertSetupFails(_ text: String, _ expected: String, resume: URL? = nil, line: UInt = #line) {
        XCTAssertThrowsError(try TrainingSetup(config: try TrainConfig.parse(text, source: "s.yaml"), baseDirectory: base, resume: resume),
                             line: line) { e in
            XCTAssertTrue("\(e)".contains(expected), "\(e)\nexpected: \(expected)", line: line)
        }
    }

    /// A checkpoint of mobilenetv3_small_100 (or `model`) trained on `classes`.
    func checkpoint(classes: [String], model: ImageClassifier? = nil) throws -> URL {
        let m = try model ?? ModelRegistry.create("mobilenetv3_small_100", numClasses: classes.count)
        let c = try TrainConfig.parse(yaml().replacingOccurrences(of: "mobilenetv3_small_100", with: m.modelName), source: "t.yaml")
        let x = Tensor.zeros([classes.count, 3, 32, 32])
        let data = InMemoryBatches(images: x, labels: Array(0..<classes.count), classes: classes, batchSize: 2)
        let t = try Trainer(config: c, model: m, train: data, val: nil)
        let url = base.appendingPathComponent("\(m.modelName)-\(classes.joined()).h5")
        try t.writeCheckpoint(to: url)
        return url
    }

    /// `data.max_image_pixels` reaches the loaders: a budget below the tiny images' size refuses
    /// them with the key's name, and the default decodes them.
    func testImageBudgetFromTheConfigReachesTheLoaders() throws {
        let small = try TrainingSetup(config: try TrainConfig.parse(yaml().replacingOccurrences(of: "batch_size: 2}", with: "batch_size: 2, max_image_pixels: 16}"),
                                                                    source: "s.yaml"), baseDirectory: base)
        XCTAssertEqual(small.trainer.trainData.batchCount > 0, true)
        XCTAssertThrowsError(try small.trainer.fit()) { e in
            XCTAssertTrue("\(e)".contains("more than the budget of 16"), "\(e)")
        }
    }

    /// A checkpoint write killed before its rename leaves `.last.h5.<pid>.<tag>.tmp`; the next run
    /// of the experiment removes it (its writer is dead and it is old), and keeps everything else.
    func testNextRunRemovesTemporaryFilesOfKilledWrites() throws {
        let dir = base.appendingPathComponent("Checkpoints/tiny")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Pids above /proc/sys/kernel/pid_max (at most 2^22) never belong to a live process.
        let stale = dir.appendingPathComponent(".last.h5.\(1 << 23).1f2e.tmp")
        let fresh = dir.appendingPathComponent(".best.h5.\(1 << 23).abc.tmp")
        let other = dir.appendingPathComponent("notes.tmp")
        for f in [stale, fresh, other] { try Data(repeating: 7, count: 100).write(to: f) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale.path)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: other.path)
        _ = try TrainingSetup(config: try TrainConfig.parse(yaml(), source: "s.yaml"), baseDirectory: base)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh.path), "a recently written file may belong to a live writer elsewhere")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.path))
    }

    func testLayerRatePrefixesMustNameParameters() throws {
        assertSetupFails(yaml(optimizer: "{name: adamw, lr: 1.0e-3, layer_lr: {conv_stm: 1.0e-5}}"),
                         "'optimizer.layer_lr': 'conv_stm' matches no parameter of mobilenetv3_small_100; closest: conv_stem")
        assertSetupFails(yaml(optimizer: "{name: adamw, lr: 1.0e-3, layer_lr_multiplier: {classifer: 10}}"),
                         "'optimizer.layer_lr_multiplier': 'classifer' matches no parameter of mobilenetv3_small_100; closest: classifier")
        assertSetupFails(yaml("finetune: {mode: partial, unfreeze: [blocks.99]}"), "'finetune.unfreeze': 'blocks.99' matches no parameter")
        // Module paths and full parameter names both count as prefixes.
        let ok = try TrainingSetup(config: try TrainConfig.parse(yaml(optimizer: "{name: adamw, lr: 1.0e-3, layer_lr: {conv_stem: 1.0e-5, blocks.0: 1.0e-4, classifier.bias: 0.01}}"),
                                                                 source: "ok.yaml"), baseDirectory: base)
        XCTAssertTrue(ok.trainer.optimizer.groups.contains { $0.name.hasSuffix(":blocks.0") }, "\(ok.trainer.optimizer.groups.map(\.name))")
    }

    /// The run: a 1000-class teacher with a student of the dataset's classes.
    func testTeacherWithOtherClassesIsRefusedBeforeTraining() throws {
        assertSetupFails(yaml("distill: {teacher: {name: mobilenetv3_small_100, checkpoint: t.h5, num_classes: 1000}}"),
                         "'distill.teacher.num_classes': the teacher has 1000 classes but the student has 2 (a, b)")
        let swapped = try checkpoint(classes: ["b", "a"])
        assertSetupFails(yaml("distill: {teacher: {name: mobilenetv3_small_100, checkpoint: \(swapped.path)}}"),
                         "'distill.teacher.checkpoint': \(swapped.path) was trained on classes [\"b\", \"a\"], the dataset has [\"a\", \"b\"]")
        let same = try checkpoint(classes: ["a", "b"])
        let setup = try TrainingSetup(config: try TrainConfig.parse(yaml("distill: {teacher: {name: mobilenetv3_small_100, checkpoint: \(same.path), image_size: 40}}"),
                                                                    source: "d.yaml"), baseDirectory: base)
        XCTAssertNotNil(setup.trainer.teacher)
    }

    /// `--resume` with a checkpoint of another model or other classes fails before any folder is made.
    func testResumeCheckpointMustMatchConfigAndData() throws {
        let swapped = try checkpoint(classes: ["b", "a"])
        assertSetupFails(yaml(), "checkpoint classes [\"b\", \"a\"] differ from the dataset's [\"a\", \"b\"]", resume: swapped)
        let tiny = try checkpoint(classes: ["a", "b"], model: TinyClassifier(numClasses: 2))
        assertSetupFails(yaml(), "checkpoint is for tiny, the config builds mobilenetv3_small_100", resume: tiny)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("Experiments").path), "no run folder for a refused resume")
        let good = try checkpoint(classes: ["a", "b"])
        XCTAssertNoThrow(try TrainingSetup(config: try TrainConfig.parse(yaml(), source: "s.yaml"), baseDirectory: base, resume: good))
    }

    /// evaluate / predict / export: the command line and the checkpoint's own config must agree
    /// with what the checkpoint records, and evaluation data with its classes.
    func testCheckpointAgainstCommandLineAndData() throws {
        let swapped = try checkpoint(classes: ["b", "a"])
        XCTAssertThrowsError(try ModelExport.load(swapped, modelName: "resnet18")) {
            XCTAssertTrue("\($0)".contains("the model is mobilenetv3_small_100 in the file but --model says resnet18"), "\($0)")
        }
        XCTAssertThrowsError(try ModelExport.load(swapped, numClasses: 5)) {
            XCTAssertTrue("\($0)".contains("the class count is 2 (b, a) in the file but --num-classes says 5"), "\($0)")
        }
        let m = try ModelExport.load(swapped)
        XCTAssertThrowsError(try ModelInference.evaluate(m, data: base.appendingPathComponent("data"))) {
            XCTAssertTrue("\($0)".contains("folders [\"a\", \"b\"] differ from the model's classes [\"b\", \"a\"]"), "\($0)")
        }
        let image = try XCTUnwrap(FileManager.default.enumerator(atPath: base.appendingPathComponent("data/val/a").path)?.nextObject() as? String)
        let url = base.appendingPathComponent("data/val/a").appendingPathComponent(image)
        for (k, ok) in [(0, false), (-1, false), (3, false), (2, true), (1, true)] {
            if ok { XCTAssertEqual(try ModelInference.predict(m, images: [url], topK: k).first?.top.count, k) }
            else { XCTAssertThrowsError(try ModelInference.predict(m, images: [url], topK: k)) {
                XCTAssertTrue("\($0)".contains("--top-k must be in 1…2 (the model's classes), got \(k)"), "\($0)") } }
        }
        XCTAssertThrowsError(try ModelInference.evaluate(m, data: base.appendingPathComponent("data"), batch: 0)) {
            XCTAssertTrue("\($0)".contains("--batch must be in 1…65536, got 0"), "\($0)")
        }
        XCTAssertThrowsError(try NearestClassMean.run(m, data: base.appendingPathComponent("data"), resolution: 0)) {
            XCTAssertTrue("\($0)".contains("--resolution must be in 8…4096, got 0"), "\($0)")
        }
    }

    /// Weights-file metadata is file content: a bad field is refused, naming it.
    func testWeightsFileMetadataIsChecked() throws {
        let m = try ModelExport.load(try checkpoint(classes: ["a", "b"]))
        let good = base.appendingPathComponent("w.safetensors")
        try ModelExport.export(m, format: .safetensors, to: good)
        XCTAssertEqual(try ModelExport.load(good).classes, ["a", "b"])
        let cases: [(String, String, String)] = [
            ("resolution", "0", "metadata 'resolution' is '0'; expected an integer in 8…4096"),
            ("resolution", "99999999", "metadata 'resolution' is '99999999'"),
            ("crop_pct", "nan", "metadata 'crop_pct' is 'nan'; expected a number in (0, 1]"),
            ("std", "[0.5, 0, 0.5]", "metadata 'std' is '[0.5, 0, 0.5]'"),
            ("classes", "[\"a\", \"b\", \"c\"]", "the class count is 2 (the head's outputs) in the file but its metadata lists 3 classes"),
            ("num_classes", "-2", "metadata 'num_classes' is '-2'"),
        ]
        for (field, value, expected) in cases {
            var meta = m.metadata
            meta[field] = value
            let url = base.appendingPathComponent("bad-\(field).safetensors")
            try writeSafeTensors(m.model.stateDict().map { (name: $0.name, value: SafeTensorsValue($0.value, half: false)) }, metadata: meta, to: url)
            XCTAssertThrowsError(try ModelExport.load(url), field) { XCTAssertTrue("\($0)".contains(expected), "\(field): \($0)") }
        }
        XCTAssertThrowsError(try ModelExport.load(good, modelName: "resnet18")) {
            XCTAssertTrue("\($0)".contains("the model is mobilenetv3_small_100 in the file but --model says resnet18"), "\($0)")
        }
    }
}
