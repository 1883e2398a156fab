import Foundation
import FinchIO

/// One alternative exact answer for one mode's gradients (make_parity.py `flip.<j>.*`): a set of
/// admissible ReLU/ReLU6 gates (one, or a pair) flipped together in the float64 backward. A float32
/// order whose rounding lands on the other side of those kinks computes this answer, not the base
/// one, so Finch is judged against it with the same 14-order noise — never with a noise widened by
/// the flip's effect.
public struct GateFlip: Sendable {
    /// "train" (grad.* checks) or "eval" (evalgrad.* checks).
    public let mode: String
    /// Each gate and element, e.g. ["blocks.1.1.bn2.act[4,15,2,12]"]; two for a pair.
    public let gates: [String]
    /// Per parameter: the truth's change at each gradient probe (probes add: the forward is unchanged).
    public let probeDelta: [String: [Double]]
    /// Per parameter: the gradient's float64 norm under this truth (a norm does not add, so it is stored whole).
    public let norm: [String: Double]

    /// The gates joined by " + ", as `finch compare` names the truth.
    public var label: String { gates.joined(separator: " + ") }

    public init(mode: String, gates: [String], probeDelta: [String: [Double]], norm: [String: Double]) {
        self.mode = mode; self.gates = gates; self.probeDelta = probeDelta; self.norm = norm
    }

    public init(mode: String, label: String, probeDelta: [String: [Double]], norm: [String: Double]) {
        self.init(mode: mode, gates: [label], probeDelta: probeDelta, norm: norm)
    }
}

/// Reading a fixture's gate flips. The file is untrusted (`finch compare` reads any path), so every
/// name, shape and value is checked against the fixture's own probes and the model's parameters.
enum GateFlips {
    /// More truths than make_parity.py writes (Lite2 ImageNet: 43 + 12 single, 2 × 28 pairs): each
    /// costs one pass over the checks.
    static let maxFlips = 256
    /// make_parity.py writes single gates and pairs; a larger set would be a file this reader does not know.
    static let maxGatesPerTruth = 2

    /// The flips of `file`, or none when its metadata has no `flips` (compare then behaves as before).
    /// `parameters` are the model's; every one must be listed, each with its `grad.index` probes.
    static func read(file: SafeTensorsFile, path: String, parameters: [String], evalGradients: Bool) throws -> [GateFlip] {
        guard let text = file.metadata["flips"] else {
            if let stray = file.names.first(where: { $0.hasPrefix("flip.") }) {
                throw ParityError.invalidFlips(file: path, key: stray, reason: "is a flip tensor but the metadata has no 'flips'")
            }
            return []
        }
        func bad(_ reason: String) -> ParityError { .invalidFlips(file: path, key: "flips", reason: reason) }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw bad("is not a JSON object")
        }
        guard let params = obj["params"] as? [String] else { throw bad("has no 'params' list of parameter names") }
        guard Set(params).count == params.count else { throw bad("lists a parameter twice in 'params'") }
        let known = Set(parameters)
        if let unknown = params.first(where: { !known.contains($0) }) {
            throw bad("names parameter '\(unknown)' in 'params', which the model has not")
        }
        if let missing = parameters.first(where: { !params.contains($0) }) {
            throw bad("does not list the model's parameter '\(missing)' in 'params'")
        }
        var counts: [Int] = []
        for p in params {
            guard let info = file.info("grad.index.\(p)") else { throw ParityError.missingKey(file: path, key: "grad.index.\(p)") }
            counts.append(info.shape.reduce(1, *))
        }
        let probeTotal = counts.reduce(0, +)
        // truths[j].gates: a set of gates per truth; files before 2026-12-07 list single flips as gates[j].
        let entries: [[String: Any]], legacy: Bool
        switch (obj["truths"], obj["gates"]) {
        case (let t?, nil):
            guard let t = t as? [[String: Any]] else { throw bad("has a 'truths' that is not a list of objects") }
            (entries, legacy) = (t, false)
        case (nil, let g?):
            guard let g = g as? [[String: Any]] else { throw bad("has a 'gates' that is not a list of objects") }
            (entries, legacy) = (g, true)
        case (nil, nil): throw bad("has no 'truths' list")
        default: throw bad("has both 'truths' and the older 'gates'; expected one")
        }
        guard entries.count <= maxFlips else { throw bad("lists \(entries.count) truths, more than \(maxFlips)") }
        if let stray = file.names.first(where: { name in
            name.hasPrefix("flip.") && !(0..<entries.count).contains { name == "flip.\($0).probe" || name == "flip.\($0).norm" }
        }) {
            throw ParityError.invalidFlips(file: path, key: stray, reason: "is not a tensor of any truth the metadata 'flips' lists")
        }
        var flips: [GateFlip] = []
        for (j, t) in entries.enumerated() {
            let what = legacy ? "gate \(j)" : "truth \(j)"
            guard let mode = t["mode"] as? String, mode == "train" || (mode == "eval" && evalGradients) else {
                throw bad("\(what) has mode \(t["mode"].map { "'\($0)'" } ?? "missing"); expected 'train'\(evalGradients ? " or 'eval'" : " (the file has no eval-mode gradients)")")
            }
            let set: [[String: Any]]
            if legacy {
                set = [t]
            } else {
                guard let g = t["gates"] as? [[String: Any]], (1...maxGatesPerTruth).contains(g.count) else {
                    throw bad("\(what) has no 'gates' list of 1 to \(maxGatesPerTruth) gates")
                }
                set = g
            }
            var labels: [String] = []
            for (k, g) in set.enumerated() {
                let at = legacy ? what : "\(what) gate \(k)"
                guard let gate = g["gate"] as? String, !gate.isEmpty, gate.count <= 200 else { throw bad("\(at) has no gate name") }
                guard let index = g["index"] as? [Int], (1...8).contains(index.count), index.allSatisfy({ $0 >= 0 }) else {
                    throw bad("\(at) has no valid 'index' (a list of non-negative positions)")
                }
                let label = "\(gate)[\(index.map(String.init).joined(separator: ","))]"
                guard !labels.contains(label) else { throw bad("\(at) repeats \(label) in one truth") }
                labels.append(label)
            }
            let probe = try values(file, "flip.\(j).probe", path: path, count: probeTotal, what: "the probes of every parameter in 'params'")
            let norm = try values(file, "flip.\(j).norm", path: path, count: params.count, what: "one norm per parameter in 'params'")
            if let i = norm.firstIndex(where: { $0 < 0 }) {
                throw ParityError.invalidFlips(file: path, key: "flip.\(j).norm", reason: "holds a negative norm (\(norm[i])) for '\(params[i])'")
            }
            var delta: [String: [Double]] = [:], norms: [String: Double] = [:]
            var at = 0
            for (name, n) in zip(params, counts) {
                delta[name] = Array(probe[at..<at + n])
                at += n
            }
            for (name, v) in zip(params, norm) { norms[name] = v }
            flips.append(GateFlip(mode: mode, gates: labels, probeDelta: delta, norm: norms))
        }
        return flips
    }

    /// Every admissible gate the file names, for `finch compare --gates`: `flips.admissible` (per
    /// mode, [key, [n,c,h,w], kink, pre64, spread], files from 2026-12-07), else the gates of its
    /// stored truths (older files list only those). Each entry is validated like the truths.
    static func admissible(file: SafeTensorsFile, path: String) throws -> [AdmissibleGate] {
        guard let text = file.metadata["flips"] else { return [] }
        func bad(_ reason: String) -> ParityError { .invalidFlips(file: path, key: "flips", reason: reason) }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw bad("is not a JSON object")
        }
        var rows: [(mode: String, entry: [Any], at: String)] = []
        if let listed = obj["admissible"] {
            guard let byMode = listed as? [String: [[Any]]] else { throw bad("has an 'admissible' that is not {mode: [[key, index, kink, pre64, spread]]}") }
            for (mode, list) in byMode.sorted(by: { $0.key < $1.key }) {
                for (i, e) in list.enumerated() { rows.append((mode, e, "admissible.\(mode)[\(i)]")) }
            }
        } else {
            let truths = (obj["truths"] as? [[String: Any]]) ?? (obj["gates"] as? [[String: Any]]) ?? []
            var seen = Set<String>()
            for (j, t) in truths.enumerated() {
                let mode = t["mode"] as? String ?? ""
                for (k, g) in ((t["gates"] as? [[String: Any]]) ?? [t]).enumerated() {
                    let e: [Any] = [g["gate"] ?? "", g["index"] ?? [], g["kink"] ?? "", g["pre64"] ?? "", g["spread"] ?? ""]
                    guard seen.insert("\(mode) \(e[0]) \(e[1])").inserted else { continue }
                    rows.append((mode, e, "truth \(j) gate \(k)"))
                }
            }
        }
        guard rows.count <= 100_000 else { throw bad("lists \(rows.count) admissible gates") }
        return try rows.map { mode, e, at in
            guard mode == "train" || mode == "eval" else { throw bad("\(at) has mode '\(mode)'; expected 'train' or 'eval'") }
            guard e.count == 5, let gate = e[0] as? String, !gate.isEmpty, gate.count <= 200,
                  let index = e[1] as? [Int], (1...8).contains(index.count), index.allSatisfy({ $0 >= 0 }),
                  let kink = e[2] as? Double, kink == 0 || kink == 6,
                  let pre64 = e[3] as? Double, pre64.isFinite, let spread = e[4] as? Double, spread.isFinite, spread > 0
            else { throw bad("\(at) is not [gate, [n,c,h,w], kink 0 or 6, finite pre64, spread > 0]") }
            return AdmissibleGate(mode: mode, gate: gate, index: index, kink: kink, pre64: pre64, spread: spread)
        }
    }

    /// A float64 tensor of exactly `count` finite values.
    static func values(_ file: SafeTensorsFile, _ key: String, path: String, count: Int, what: String) throws -> [Double] {
        guard let info = file.info(key) else { throw ParityError.missingKey(file: path, key: key) }
        guard info.dtype == .f64, info.shape.reduce(1, *) == count else {
            throw ParityError.invalidFlips(file: path, key: key, reason: "is \(info.dtype) \(info.shape); expected float64 [\(count)], \(what)")
        }
        let raw = try file.rawBytes(key)
        let v: [Double] = raw.withUnsafeBytes { p in
            (0..<count).map { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        }
        if let bad = v.first(where: { !$0.isFinite }) {
            throw ParityError.invalidFlips(file: path, key: key, reason: "holds a value that is not finite (\(bad))")
        }
        return v
    }
}
