import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO

/// `.pth` files written by PyTorch (Tests/Fixtures/pth, made by tools/make_pth.py): every dtype,
/// views with strides and offsets, Parameters, nested checkpoints with DataParallel prefixes,
/// key mapping by rules and by position into a zoo model, and refusals that name the file.
final class TorchCheckpointTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/pth").standardized
    func fixture(_ name: String) -> URL { Self.dir.appendingPathComponent(name) }

    func testReadsEveryDtypeAndViewExactly() throws {
        let got = try TorchCheckpoint.read(fixture("tiny_state.pth"))
        let expected = try SafeTensorsFile(contentsOf: fixture("tiny_state.expected.safetensors"))
        // File order is the state dict's order.
        XCTAssertEqual(got.map(\.name).prefix(3), ["0.weight", "0.bias", "1.weight"])
        XCTAssertEqual(Set(got.map(\.name)), Set(expected.names))
        for (name, value) in got {
            let info = try XCTUnwrap(expected.info(name), name)
            XCTAssertEqual(value.shape, info.shape, name)
            switch value {
            case .float(let t): XCTAssertEqual(t.scalars, try expected.tensor(name).scalars, name)
            case .int64(let v, _): XCTAssertEqual(v, try expected.int64s(name), name)
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: got.map { ($0.name, $0.value) })
        XCTAssertEqual(byName["1.num_batches_tracked"]?.shape, [])
        guard case .float(let tr) = byName["extra.transposed"]! else { return XCTFail() }
        XCTAssertEqual(tr.shape, [6, 4])
        XCTAssertEqual(Array(tr.scalars.prefix(4)), [-3, -1.5, 0, 1.5])   // column 0 of the 4×6 view: 0, 6, 12, 18 × 0.25 − 3
        guard case .float(let sl) = byName["extra.slice"]! else { return XCTFail() }
        XCTAssertEqual(sl.scalars, [6, 7, 10, 11, 14, 15].map { Float($0) * 0.25 - 3 })
        guard case .int64(let b, _) = byName["extra.bool"]! else { return XCTFail() }
        XCTAssertEqual(b, [1, 0, 1])
    }

    func testFindsTheStateDictInsideACheckpointAndDropsTheModulePrefix() throws {
        let got = try TorchCheckpoint.read(fixture("checkpoint_module.pth"))
        XCTAssertEqual(got.map(\.name), ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                         "1.num_batches_tracked", "3.weight", "3.bias"])
        let plain = try TorchCheckpoint.read(fixture("tiny_state.pth"))
        for (name, value) in got {
            guard case .float(let a) = value, case .float(let b)? = plain.first(where: { $0.name == name })?.value else { continue }
            XCTAssertEqual(a.scalars, b.scalars, name)
        }
        // Through WeightsFile, a .pth loads wherever weights do (configs' model.pretrained too).
        XCTAssertEqual(try WeightsFile.format(of: fixture("checkpoint_module.pth")), .torch)
        XCTAssertEqual(try WeightsFile.read(fixture("checkpoint_module.pth")).state.count, 9)
    }

    /// timm's mobilenetv3_small_100 saved in float16 under another codebase's names: rules and
    /// by-position both recover timm's names, and a strict load into the zoo model succeeds with
    /// every tensor's sum equal to the one PyTorch computed.
    func testMappingIntoAZooModelByRulesAndByPosition() throws {
        let source = try TorchCheckpoint.read(fixture("mnv3s_renamed_half.pth"))
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("mnv3s_renamed_half.json"))) as! [String: [String: Any]]
        let rules = try KeyMapping(text: """
            # another codebase's names → timm's
            ^features\\.stem\\.conv\\. => conv_stem.
            ^features\\.stem\\.bn\\. => bn1.
            ^features\\. => blocks.
            ^head\\.conv\\. => conv_head.
            ^head\\.fc\\. => classifier.
            """)
        for mapping in [rules, try KeyMapping(text: "by-position")] {
            let model = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 3)
            let mapped = try mapping.apply(to: source, model: model, file: "mnv3s_renamed_half.pth")
            var sd: [String: StateValue] = [:]
            for (k, v) in mapped { sd[k] = v }
            try model.load(stateDict: sd, strict: true)
            XCTAssertEqual(Set(sd.keys), Set(ref.keys))
            for (name, value) in model.stateDict() {
                let r = try XCTUnwrap(ref[name], name)
                XCTAssertEqual(value.shape, r["shape"] as? [Int], name)
                let sum: Double
                switch value {
                case .float(let t): sum = t.scalars.reduce(0.0) { $0 + Double($1) }
                case .int64(let v, _): sum = Double(v.reduce(0, +))
                }
                XCTAssertEqual(sum, (r["sum"] as! NSNumber).doubleValue, accuracy: 1e-6 * max(1, abs(sum)), name)
            }
        }
        // By position into the wrong model: the first shape clash is named.
        let wrong = try ModelRegistry.create("mobilenetv3_small_100", numClasses: 5)
        XCTAssertThrowsError(try KeyMapping(text: "by-position").apply(to: source, model: wrong, file: "m.pth")) {
            XCTAssertTrue("\($0)".contains("'head.fc.weight' has shape [3, 1024] but the model's 'classifier.weight' is [5, 1024]"), "\($0)")
        }
        XCTAssertThrowsError(try KeyMapping(text: "^a( => b", file: "rules.txt")) { XCTAssertTrue("\($0)".contains("rules.txt:1: invalid regular expression"), "\($0)") }
        XCTAssertThrowsError(try KeyMapping(text: "\nnonsense", file: "rules.txt")) { XCTAssertTrue("\($0)".contains("rules.txt:2: expected"), "\($0)") }
    }

    func testRefusesLegacyTruncatedAndForeignFilesNamingThem() throws {
        XCTAssertThrowsError(try TorchCheckpoint.read(fixture("legacy.pth"))) {
            XCTAssertTrue("\($0)".contains("legacy.pth: legacy (pre-1.6) torch.save format"), "\($0)")
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("finch-pth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let whole = try Data(contentsOf: fixture("tiny_state.pth"))
        for cut in [whole.count / 2, whole.count - 10, 30] {
            let u = tmp.appendingPathComponent("cut\(cut).pth")
            try whole.prefix(cut).write(to: u)
            XCTAssertThrowsError(try TorchCheckpoint.read(u), "cut at \(cut)") { XCTAssertTrue("\($0)".contains("cut\(cut).pth"), "\($0)") }
        }
        let text = tmp.appendingPathComponent("notes.pth")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try TorchCheckpoint.read(text)) { XCTAssertTrue("\($0)".contains("notes.pth: not a PyTorch"), "\($0)") }
        // A pickle that would call arbitrary code names a global outside the allow-list: refused
        // by name, and nothing is ever called either way. An allowed callable stays inert data.
        var evil = Unpickler(Data([0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x58, 4, 0, 0, 0] + Array("true".utf8) + [0x85, 0x52, 0x2E]), file: "evil")
        XCTAssertThrowsError(try evil.load()) { XCTAssertTrue("\($0)".contains("evil: pickle: global 'os.system'"), "\($0)") }
        var inert = Unpickler(Data([0x80, 0x02, 0x63] + Array("collections\nOrderedDict\n".utf8) + [0x58, 4, 0, 0, 0] + Array("true".utf8) + [0x85, 0x52, 0x2E]), file: "inert")
        let graph = try inert.load()
        guard case .call(.global("collections", "OrderedDict"), let args, _)? = graph.object(graph.root) else { return XCTFail("not kept as data") }
        XCTAssertEqual(args.first?.string, "true")
    }
}
