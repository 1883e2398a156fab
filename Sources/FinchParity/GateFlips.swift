import Foundation
import FinchIO

/// One admissible ReLU/ReLU6 gate flipped in the float64 backward (make_parity.py, `flip.<j>.*`):
/// an alternative exact answer for one mode's gradients. A float32 order whose rounding lands on
/// the other side of that kink computes this answer, not the base one, so Finch is judged against
/// it with the same 14-order noise — never with a noise widened by the flip's effect.
public struct GateFlip: Sendable {
    /// "train" (grad.* checks) or "eval" (evalgrad.* checks).
    public let mode: String
    /// The gate and element, e.g. "blocks.1.1.bn2.act[4,15,2,12]".
    public let label: String
    /// Per parameter: the flip's change at each gradient probe (probes add: the forward is unchanged).
    public let probeDelta: [String: [Double]]
    /// Per parameter: the gradient's float64 norm with the flip (a norm does not add, so it is stored whole).
    public let norm: [String: Double]

    public init(mode: String, label: String, probeDelta: [String: [Double]], norm: [String: Double]) {
        self.mode = mode; self.label = label; self.probeDelta = probeDelta; self.norm = norm
    }
}

/// Reading a fixture's gate flips. The file is untrusted (`finch compare` reads any path), so every
/// name, shape and value is checked against the fixture's own probes and the model's parameters.
enum GateFlips {
    /// More flips than make_parity.py ever writes (12 per mode): each costs one pass over the checks.
    static let maxFlips = 64

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
        guard let gates = obj["gates"] as? [[String: Any]] else { throw bad("has no 'gates' list") }
        guard gates.count <= maxFlips else { throw bad("lists \(gates.count) gates, more than \(maxFlips)") }
        if let stray = file.names.first(where: { name in
            name.hasPrefix("flip.") && !(0..<gates.count).contains { name == "flip.\($0).probe" || name == "flip.\($0).norm" }
        }) {
            throw ParityError.invalidFlips(file: path, key: stray, reason: "is not a tensor of any gate the metadata 'flips' lists")
        }
        var flips: [GateFlip] = []
        for (j, g) in gates.enumerated() {
            guard let mode = g["mode"] as? String, mode == "train" || (mode == "eval" && evalGradients) else {
                throw bad("gate \(j) has mode \(g["mode"].map { "'\($0)'" } ?? "missing"); expected 'train'\(evalGradients ? " or 'eval'" : " (the file has no eval-mode gradients)")")
            }
            guard let gate = g["gate"] as? String, !gate.isEmpty, gate.count <= 200 else { throw bad("gate \(j) has no gate name") }
            guard let index = g["index"] as? [Int], (1...8).contains(index.count), index.allSatisfy({ $0 >= 0 }) else {
                throw bad("gate \(j) has no valid 'index' (a list of non-negative positions)")
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
            flips.append(GateFlip(mode: mode, label: "\(gate)[\(index.map(String.init).joined(separator: ","))]", probeDelta: delta, norm: norms))
        }
        return flips
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
