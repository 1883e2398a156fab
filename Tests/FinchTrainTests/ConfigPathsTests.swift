import XCTest
import Foundation
import FinchTestSupport
@testable import FinchTrain

/// Relative paths in a config: beside the config file first, then the current folder; outputs
/// found in neither go beside the config; defaults and `--set` values use the current folder;
/// a missing input names every path tried.
final class ConfigPathsTests: XCTestCase {
    var root: URL!
    var configDir: URL { root.appendingPathComponent("project") }
    var cwd: URL { root.appendingPathComponent("elsewhere") }

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("finch-paths-\(UUID().uuidString)").standardizedFileURL
        for d in [configDir, cwd] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
    }
    override func tearDownWithError() throws { if let root { try? FileManager.default.removeItem(at: root) } }

    func writeConfig(root dataRoot: String = "data", model: String = "{name: mobilenetv3_small_100}", extra: String = "") throws -> URL {
        let url = configDir.appendingPathComponent("tiny.yaml")
        try """
        experiment: tiny
        seed: 3
        data: {root: \(dataRoot), image_size: 32, batch_size: 2, workers: 0}
        model: \(model)
        optimizer: {name: adamw, lr: 1.0e-3}
        schedule: {name: cosine, epochs: 1, warmup_epochs: 0}
        \(extra)
        """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testPathsTheFileWroteResolveBesideItFromAnotherFolder() throws {
        try TinyImageFolder.make(under: configDir)
        let c = try TrainConfig.load(try writeConfig(extra: "checkpoints: ck"))
        XCTAssertEqual(c.configDirectory?.path, configDir.path)
        XCTAssertEqual(c.resolvePath("data.root", c.data.root, base: cwd).path, configDir.appendingPathComponent("data").path)
        let setup = try TrainingSetup(config: c, baseDirectory: cwd)
        XCTAssertEqual(setup.classes, ["a", "b"])
        // An output the file names and that exists nowhere yet is made beside the config; the
        // default run folder root, which no file wrote, stays in the current folder.
        XCTAssertTrue(setup.checkpointDirectory.path.hasPrefix(configDir.appendingPathComponent("ck").path), setup.checkpointDirectory.path)
        XCTAssertTrue(setup.runDirectory.path.hasPrefix(cwd.appendingPathComponent("Experiments/runs").path), setup.runDirectory.path)
    }

    /// Configs written relative to a repository root (Experiments/*.yaml name Datasets/flowers)
    /// still find their data from the root.
    func testFallsBackToTheCurrentFolder() throws {
        try TinyImageFolder.make(under: cwd)
        let c = try TrainConfig.load(try writeConfig())
        XCTAssertEqual(c.resolvePath("data.root", "data", base: cwd).path, cwd.appendingPathComponent("data").path)
        XCTAssertEqual(try TrainingSetup(config: c, baseDirectory: cwd).classes, ["a", "b"])
    }

    func testAMissingInputNamesBothPathsTried() throws {
        let c = try TrainConfig.load(try writeConfig(root: "nodata"))
        XCTAssertThrowsError(try TrainingSetup(config: c, baseDirectory: cwd)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("'data.root': 'nodata' not found: tried \(self.configDir.path)/nodata (beside the config) and \(self.cwd.path)/nodata (the current folder)"), text)
        }
        try TinyImageFolder.make(under: configDir)
        let weights = try TrainConfig.load(try writeConfig(model: "{name: mobilenetv3_small_100, pretrained: w/none.safetensors}"))
        XCTAssertThrowsError(try TrainingSetup(config: weights, baseDirectory: cwd)) { e in
            XCTAssertTrue("\(e)".contains("'model.pretrained': 'w/none.safetensors' not found: tried \(self.configDir.path)/w/none.safetensors"), "\(e)")
        }
    }

    /// A `--set` value is typed relative to where the command runs, not to the config.
    func testSetValuesResolveAgainstTheCurrentFolder() throws {
        try TinyImageFolder.make(under: configDir)
        let url = try writeConfig(root: "elsewhere-data")
        let c = try TrainConfig.load(url, overrides: ["data.root=data"])
        XCTAssertFalse(c.pathsFromFile.contains("data.root"))
        XCTAssertEqual(c.resolvePath("data.root", c.data.root, base: cwd).path, cwd.appendingPathComponent("data").path)
        XCTAssertThrowsError(try TrainingSetup(config: c, baseDirectory: cwd)) { e in
            XCTAssertTrue("\(e)".contains(self.cwd.appendingPathComponent("data").path), "\(e)")
        }
        // Absolute paths are used as they are.
        let abs = try TrainConfig.load(url, overrides: ["data.root=\(configDir.appendingPathComponent("data").path)"])
        XCTAssertEqual(try TrainingSetup(config: abs, baseDirectory: cwd).classes, ["a", "b"])
    }

    /// `train --config /elsewhere/x.yaml` run from another folder trains on the data beside the config.
    func testTrainRunsAConfigFromAnotherFolder() throws {
        try TinyImageFolder.make(under: configDir)
        let url = try writeConfig(extra: "checkpoints: ck")
        let train = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/train").standardized
        let r = ChildProcess.run(train, ["--config", url.path], in: cwd)
        XCTAssertEqual(r.status, 0, r.output)
        let ck = configDir.appendingPathComponent("ck/tiny")
        let files = FileManager.default.enumerator(atPath: ck.path)?.compactMap { $0 as? String } ?? []
        XCTAssertTrue(files.contains { $0.hasSuffix("last.h5") }, "no last.h5 under \(ck.path): \(files)\n\(r.output)")
    }
}
