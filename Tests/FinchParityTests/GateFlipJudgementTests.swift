import XCTest
import Foundation
import FinchIO
@testable import FinchParity

/// Gate flips as alternative truths (make_parity.py `flip.*`, ParityComparison.judgeGradients):
/// a mode passes when the base float64 answer or one stored truth (a single flip or a pair flipped
/// together) makes every gradient check of that mode pass with the 14-order noise; and the flip
/// data of an untrusted file is validated.
final class GateFlipJudgementTests: XCTestCase {
    /// Two parameters, "a" and "b", four probes each; PyTorch's noise 1e-6 everywhere, so the rule
    /// allows 3e-6 (plus 4 ulps of a scale of 2).
    func inputs(a: [Float], b: [Float], normA: Float = 3, normB: Float = 4) -> [GradientInput] {
        [GradientInput(name: "a", ours: a, ourNorm: normA, exact: [0.5, -1, 2, 0.25], exactNorm: 3, noise: 1e-6, normNoise: 1e-6, scale: 2),
         GradientInput(name: "b", ours: b, ourNorm: normB, exact: [1, 1, -0.5, 0], exactNorm: 4, noise: 1e-6, normNoise: 1e-6, scale: 2)]
    }
    let exactA: [Float] = [0.5, -1, 2, 0.25], exactB: [Float] = [1, 1, -0.5, 0]

    /// A flip that moves probe `at` of `param` by `by` and that parameter's norm to `norm`.
    func flip(_ label: String, mode: String = "train", param: String, at: Int, by: Double, norm: Double) -> GateFlip {
        var delta = ["a": [0.0, 0, 0, 0], "b": [0.0, 0, 0, 0]], norms = ["a": 3.0, "b": 4.0]
        delta[param]![at] = by
        norms[param] = norm
        return GateFlip(mode: mode, label: label, probeDelta: delta, norm: norms)
    }

    func testMatchingTheBaseTruthNamesBase() {
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: exactA, b: exactB),
                                                                 flips: [flip("g[0,1,2,3]", param: "a", at: 1, by: 0.01, norm: 3.01)])
        XCTAssertEqual(pattern, GatePattern(mode: "train", pattern: "base"))
        XCTAssertEqual(checks.count, 4)
        XCTAssertTrue(checks.allSatisfy(\.passed))
    }

    func testMatchingAFlippedTruthPassesAndNamesIt() {
        var a = exactA
        a[1] += 0.01
        let flips = [flip("blocks.0.act[0,3,1,1]", param: "b", at: 0, by: 0.02, norm: 4.02),
                     flip("blocks.1.act[1,2,0,5]", param: "a", at: 1, by: 0.01, norm: 3.01)]
        let base = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: exactB, normA: 3.01), flips: [])
        XCTAssertNil(base.0, "no flips: no pattern, as before")
        XCTAssertEqual(base.1.filter { !$0.passed }.map(\.name), ["grad.a", "grad.norm.a"])
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: exactB, normA: 3.01), flips: flips)
        XCTAssertEqual(pattern?.pattern, "blocks.1.act[1,2,0,5]")
        XCTAssertEqual(pattern?.line, "gates (train): blocks.1.act[1,2,0,5]")
        XCTAssertEqual(checks.map(\.name), ["grad.a", "grad.norm.a", "grad.b", "grad.norm.b"])
        XCTAssertTrue(checks.allSatisfy(\.passed), checks.map { "\($0.name) \($0.maxAbs)" }.joined(separator: ", "))
        // Judged with the orders' noise, not a widened one: the ratio is to 1e-6.
        XCTAssertLessThan(checks.compactMap(\.ratio).max()!, 3)
    }

    func testMatchingNeitherFails() {
        var a = exactA
        a[1] += 0.005  // half the flip's change: neither truth
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: exactB),
                                                                 flips: [flip("g[0,0,0,0]", param: "a", at: 1, by: 0.01, norm: 3)])
        XCTAssertEqual(pattern?.pattern, "base")
        XCTAssertEqual(checks.filter { !$0.passed }.map(\.name), ["grad.a"])
    }

    /// The flip explains a's probe but does not move b's: b is still judged against the base.
    func testAFlipCannotExcuseACheckItDoesNotChange() {
        var a = exactA, b = exactB
        a[1] += 0.01
        b[2] += 1e-4
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: b),
                                                                 flips: [flip("g[0,0,0,0]", param: "a", at: 1, by: 0.01, norm: 3)])
        XCTAssertEqual(pattern?.pattern, "base")
        XCTAssertTrue(checks.contains { $0.name == "grad.b" && !$0.passed })
    }

    /// One flip explains a, another b: no single float32 run crosses both ways, so the mode fails.
    func testMixedPatternsAcrossChecksFail() {
        var a = exactA, b = exactB
        a[1] += 0.01
        b[0] += 0.02
        let flips = [flip("first[0,0,0,0]", param: "a", at: 1, by: 0.01, norm: 3), flip("second[0,0,0,1]", param: "b", at: 0, by: 0.02, norm: 4)]
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: b), flips: flips)
        XCTAssertEqual(pattern?.pattern, "base")
        XCTAssertEqual(Set(checks.filter { !$0.passed }.map(\.name)), ["grad.a", "grad.b"])
        // The hint names the flip that leaves fewest failing; the failures stay those against base.
        XCTAssertEqual(pattern?.line, "gates (train): base; no flip passes (closest: first[0,0,0,0], 1 failing)")
    }

    /// A flip judges its own norm: with the probes explained but the flipped norm not matched, it fails.
    func testTheFlippedNormMustMatchToo() {
        var a = exactA
        a[1] += 0.01
        let (_, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: exactB, normA: 3),
                                                           flips: [flip("g[0,0,0,0]", param: "a", at: 1, by: 0.01, norm: 3.01)])
        XCTAssertFalse(checks.allSatisfy(\.passed))
    }

    /// An eval-mode flip does not excuse the train-mode gradients.
    func testAFlipOfTheOtherModeIsNotUsed() {
        var a = exactA
        a[1] += 0.01
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: exactB),
                                                                 flips: [flip("g[0,0,0,0]", mode: "eval", param: "a", at: 1, by: 0.01, norm: 3)])
        XCTAssertNil(pattern)
        XCTAssertFalse(checks.allSatisfy(\.passed))
    }

    /// A truth flipping two gates at once, its answer from its own float64 run: moves a and b.
    func pair(_ gates: [String], a: Double, b: Double) -> GateFlip {
        GateFlip(mode: "train", gates: gates, probeDelta: ["a": [0, a, 0, 0], "b": [b, 0, 0, 0]], norm: ["a": 3 + a, "b": 4 + b])
    }

    /// Finch crossed two kinks in one run: neither single flip explains both parameters, the pair does.
    func testAPairTruthPassesAndIsNamed() {
        var a = exactA, b = exactB
        a[1] += 0.01
        b[0] += 0.02
        let flips = [flip("first[0,0,0,0]", param: "a", at: 1, by: 0.01, norm: 3.01),
                     flip("second[0,0,0,1]", param: "b", at: 0, by: 0.02, norm: 4.02),
                     pair(["first[0,0,0,0]", "second[0,0,0,1]"], a: 0.01, b: 0.02)]
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train",
                                                                 inputs: inputs(a: a, b: b, normA: 3.01, normB: 4.02), flips: flips)
        XCTAssertEqual(pattern?.pattern, "first[0,0,0,0] + second[0,0,0,1]")
        XCTAssertEqual(pattern?.line, "gates (train): first[0,0,0,0] + second[0,0,0,1]")
        XCTAssertTrue(checks.allSatisfy(\.passed), checks.map { "\($0.name) \($0.maxAbs)" }.joined(separator: ", "))
        // Without the pair's own run the two singles do not compose: the mode fails.
        let (without, _) = ParityComparison.judgeGradients(prefix: "grad", mode: "train",
                                                            inputs: inputs(a: a, b: b, normA: 3.01, normB: 4.02), flips: Array(flips.prefix(2)))
        XCTAssertEqual(without?.pattern, "base")
        XCTAssertNotNil(without?.closest)
    }

    /// A pair moves a and b; a 1e-4 error in b's third probe, which the pair does not move, still fails.
    func testAPairCannotExcuseACheckItDoesNotMove() {
        var a = exactA, b = exactB
        a[1] += 0.01
        b[0] += 0.02
        b[2] += 1e-4
        let (pattern, checks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs(a: a, b: b, normA: 3.01, normB: 4.02),
                                                                 flips: [pair(["p[0,0,0,0]", "q[0,0,0,1]"], a: 0.01, b: 0.02)])
        XCTAssertEqual(pattern?.pattern, "base")
        XCTAssertEqual(pattern?.closest?.label, "p[0,0,0,0] + q[0,0,0,1]")
        XCTAssertTrue(checks.contains { $0.name == "grad.b" && !$0.passed })
    }

    /// Finch's own side of a gate (GateObservation): `z` its pre-activation, float64's just below zero.
    func side(_ gate: String, index: [Int], finch z: Float?) -> GateSide {
        let g = AdmissibleGate(mode: "train", gate: gate, index: index, kink: 0, pre64: -1e-7, spread: 1e-6)
        return GateSide(gate: g, finch: z, flipped: z.map { $0 > 0 } ?? false)
    }

    /// A truth whose gate Finch's forward did not cross explains nothing, however well it fits; one
    /// Finch crossed (or cannot be read at) counts. A pair needs both gates crossed.
    func testATruthCountsOnlyIfFinchCrossedItsGates() {
        var a = exactA, b = exactB
        a[1] += 0.01
        b[0] += 0.02
        let single = [flip("g.act[0,1]", param: "a", at: 1, by: 0.01, norm: 3.01)]
        let ins = inputs(a: a, b: exactB, normA: 3.01)
        let notCrossed = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: ins, flips: single,
                                                          crossed: [side("g.act", index: [0, 1], finch: -2e-7)])
        XCTAssertEqual(notCrossed.0, GatePattern(mode: "train", pattern: "base"))
        XCTAssertFalse(notCrossed.1.allSatisfy(\.passed))
        for z: Float? in [3e-7, nil] {
            let counted = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: ins, flips: single,
                                                           crossed: [side("g.act", index: [0, 1], finch: z)])
            XCTAssertEqual(counted.0?.pattern, "g.act[0,1]")
            XCTAssertTrue(counted.1.allSatisfy(\.passed))
        }
        let pairTruth = [pair(["p.act[0,0]", "q.act[0,1]"], a: 0.01, b: 0.02)]
        let both = inputs(a: a, b: b, normA: 3.01, normB: 4.02)
        let oneCrossed = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: both, flips: pairTruth,
                                                          crossed: [side("p.act", index: [0, 0], finch: 1e-7), side("q.act", index: [0, 1], finch: -1e-7)])
        XCTAssertEqual(oneCrossed.0?.pattern, "base")
        let twoCrossed = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: both, flips: pairTruth,
                                                          crossed: [side("p.act", index: [0, 0], finch: 1e-7), side("q.act", index: [0, 1], finch: 1e-7)])
        XCTAssertEqual(twoCrossed.0?.pattern, "p.act[0,0] + q.act[0,1]")
    }

    // MARK: Reading flip data from an untrusted file

    enum Entry { case f64([Double]), i64([Int64]) }

    /// A safetensors file in memory with these tensors and metadata.
    func file(_ tensors: [String: Entry], flips: String?) throws -> SafeTensorsFile {
        var header: [String: Any] = [:], data = Data(), offset = 0
        for (name, e) in tensors.sorted(by: { $0.key < $1.key }) {
            var bytes = Data()
            switch e {
            case .f64(let v): for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            case .i64(let v): for x in v { withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) } }
            }
            let count: Int
            switch e { case .f64(let v): count = v.count; case .i64(let v): count = v.count }
            header[name] = ["dtype": { if case .f64 = e { return "F64" } else { return "I64" } }(), "shape": [count],
                            "data_offsets": [offset, offset + bytes.count]]
            offset += bytes.count
            data.append(bytes)
        }
        if let flips { header["__metadata__"] = ["flips": flips] }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(data)
        return try SafeTensorsFile(bytes: out, name: "hostile.safetensors")
    }

    static let validFlips = #"{"params": ["a", "b"], "gates": [{"mode": "train", "gate": "layer1.act", "index": [1, 2, 0, 3]}]}"#

    static let pairFlips = #"{"params": ["a", "b"], "truths": [{"mode": "train", "gates": [{"gate": "layer1.act", "index": [1, 2, 0, 3]}, {"gate": "layer2.act", "index": [0, 5, 1, 1]}]}]}"#

    func tensors(probe: [Double] = [0.1, 0.2, 0.3], norm: [Double] = [1.5, 2.5]) -> [String: Entry] {
        ["grad.index.a": .i64([0, 4]), "grad.index.b": .i64([7]), "flip.0.probe": .f64(probe), "flip.0.norm": .f64(norm)]
    }

    func read(_ file: SafeTensorsFile, eval: Bool = false) throws -> [GateFlip] {
        try GateFlips.read(file: file, path: file.path, parameters: ["a", "b"], evalGradients: eval)
    }

    func testValidFlipsSplitPerParameter() throws {
        let flips = try read(try file(tensors(), flips: Self.validFlips))
        XCTAssertEqual(flips.count, 1)
        XCTAssertEqual(flips[0].label, "layer1.act[1,2,0,3]")
        XCTAssertEqual(flips[0].mode, "train")
        XCTAssertEqual(flips[0].probeDelta["a"], [0.1, 0.2])
        XCTAssertEqual(flips[0].probeDelta["b"], [0.3])
        XCTAssertEqual(flips[0].norm, ["a": 1.5, "b": 2.5])
        XCTAssertTrue(try read(try file(["grad.index.a": .i64([0])], flips: nil)).isEmpty, "no flips: compare as before")
    }

    func testAPairTruthIsReadAsOneTruthOfTwoGates() throws {
        let flips = try read(try file(tensors(), flips: Self.pairFlips))
        XCTAssertEqual(flips.count, 1)
        XCTAssertEqual(flips[0].gates, ["layer1.act[1,2,0,3]", "layer2.act[0,5,1,1]"])
        XCTAssertEqual(flips[0].label, "layer1.act[1,2,0,3] + layer2.act[0,5,1,1]")
        XCTAssertEqual(flips[0].probeDelta["b"], [0.3])
        let single = try read(try file(tensors(), flips: Self.pairFlips.replacingOccurrences(of: #", {"gate": "layer2.act", "index": [0, 5, 1, 1]}"#, with: "")))
        XCTAssertEqual(single[0].gates, ["layer1.act[1,2,0,3]"], "a set of one is a single flip")
    }

    func testMalformedPairMetadataIsAClearError() {
        let t = tensors(), p = Self.pairFlips
        let second = #"{"gate": "layer2.act", "index": [0, 5, 1, 1]}"#
        expectError(t, flips: p.replacingOccurrences(of: second, with: second + ", " + second.replacingOccurrences(of: "layer2", with: "layer3")), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: second, with: #"{"gate": "layer1.act", "index": [1, 2, 0, 3]}"#), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: "[0, 5, 1, 1]", with: #""0,5,1,1""#), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: #""gate": "layer2.act", "#, with: ""), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: #""gates": [{"gate": "layer1.act", "index": [1, 2, 0, 3]}, "# + second + "]", with: #""gates": []"#), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: #""truths": ["#, with: #""gates": [], "truths": ["#), key: "flips")
        expectError(t, flips: p.replacingOccurrences(of: #""truths": ["#, with: #""truths": {"x": ["#).replacingOccurrences(of: "}]}]}", with: "}]}]}}"), key: "flips")
        var stray = t
        stray["flip.1.norm"] = .f64([1, 1])
        expectError(stray, flips: p, key: "flip.1.norm")
        // The message says which truth and which gate.
        XCTAssertThrowsError(try read(try file(t, flips: p.replacingOccurrences(of: "[0, 5, 1, 1]", with: "[-2]")))) { e in
            XCTAssertTrue("\(e)".contains("truth 0 gate 1"), "\(e)")
        }
    }

    func testAdmissibleGatesAreReadAndValidated() throws {
        let listed = #"{"params": ["a", "b"], "truths": [], "admissible": {"eval": [["blocks.1.act", [4, 15, 2, 12], 0.0, -8.7e-07, 1.45e-06], ["blocks.2.act", [0, 1, 0, 0], 6.0, 5.999999, 2e-06]]}}"#
        let gates = try GateFlips.admissible(file: try file([:], flips: listed), path: "hostile.safetensors")
        XCTAssertEqual(gates.map(\.label), ["blocks.1.act[4,15,2,12]", "blocks.2.act[0,1,0,0]"])
        XCTAssertEqual(gates.map(\.mode), ["eval", "eval"])
        XCTAssertEqual(gates[1].kink, 6)
        // Older files: the gates of their truths.
        let old = try GateFlips.admissible(file: try file([:], flips: #"{"gates": [{"mode": "train", "gate": "g.act", "index": [0, 1], "kink": 0.0, "pre64": 1e-7, "spread": 1e-6}]}"#), path: "x")
        XCTAssertEqual(old.map(\.label), ["g.act[0,1]"])
        for bad in [listed.replacingOccurrences(of: "0.0, -8.7e-07", with: "3.0, -8.7e-07"),
                    listed.replacingOccurrences(of: "1.45e-06", with: "-1.45e-06"),
                    listed.replacingOccurrences(of: #""eval": ["#, with: #""bogus": ["#),
                    listed.replacingOccurrences(of: "[4, 15, 2, 12], ", with: "")] {
            XCTAssertThrowsError(try GateFlips.admissible(file: try file([:], flips: bad), path: "hostile.safetensors")) { e in
                XCTAssertTrue(e is ParityError && "\(e)".contains("hostile.safetensors") && "\(e)".contains("'flips'"), "\(e)")
            }
        }
    }

    /// Each malformed case is a ParityError naming the file and the offending key.
    func expectError(_ tensors: [String: Entry], flips: String?, key: String, eval: Bool = false, line: UInt = #line) {
        XCTAssertThrowsError(try read(try file(tensors, flips: flips), eval: eval), line: line) { e in
            let text = "\(e)"
            XCTAssertTrue(e is ParityError, text, line: line)
            XCTAssertTrue(text.contains("hostile.safetensors") && text.contains("'\(key)'"), text, line: line)
        }
    }

    func testMalformedFlipDataIsAClearError() {
        let t = tensors()
        expectError(t, flips: "not json", key: "flips")
        expectError(t, flips: Self.validFlips.replacingOccurrences(of: #"["a", "b"]"#, with: #"["a", "c"]"#), key: "flips")
        expectError(t, flips: Self.validFlips.replacingOccurrences(of: #"["a", "b"]"#, with: #"["a"]"#), key: "flips")
        expectError(t, flips: Self.validFlips.replacingOccurrences(of: #""train""#, with: #""eval""#), key: "flips")
        expectError(t, flips: Self.validFlips.replacingOccurrences(of: #"[1, 2, 0, 3]"#, with: #"[-1]"#), key: "flips")
        expectError(tensors(probe: [0.1, 0.2]), flips: Self.validFlips, key: "flip.0.probe")
        expectError(tensors(norm: [1, -2]), flips: Self.validFlips, key: "flip.0.norm")
        expectError(tensors(probe: [0.1, .nan, 0.3]), flips: Self.validFlips, key: "flip.0.probe")
        var missing = t
        missing["flip.0.norm"] = nil
        expectError(missing, flips: Self.validFlips, key: "flip.0.norm")
        var noIndex = t
        noIndex["grad.index.b"] = nil
        expectError(noIndex, flips: Self.validFlips, key: "grad.index.b")
        var stray = t
        stray["flip.1.probe"] = .f64([0, 0, 0])
        expectError(stray, flips: Self.validFlips, key: "flip.1.probe")
        expectError(t, flips: nil, key: "flip.0.norm")
    }

    /// Mutated metadata never crashes the reader: it reads or throws a ParityError naming the file.
    func testMutatedMetadataIsReadOrRejected() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]",:0123456789-.e"abtrinmodexvalgp "#)
        let base = Array(Self.validFlips)
        for _ in 0..<300 {
            var text = base
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                text[Int.random(in: 0..<text.count, using: &rng)] = alphabet.randomElement(using: &rng)!
            }
            do { _ = try read(try file(tensors(), flips: String(text))) } catch {
                XCTAssertTrue(error is ParityError && "\(error)".contains("hostile.safetensors"), "\(error) for \(String(text))")
            }
        }
    }
}
