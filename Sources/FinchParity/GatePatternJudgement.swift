import Foundation

/// One parameter's gradient as a compact fixture checks it: Finch's values at the probes and its
/// norm, the float64 answer there, PyTorch float32's noise and the tensor's scale.
public struct GradientInput: Sendable {
    public let name: String
    public let ours: [Float]
    public let ourNorm: Float
    public let exact: [Double]
    public let exactNorm: Double
    public let noise: Double
    public let normNoise: Double
    public let scale: Double

    public init(name: String, ours: [Float], ourNorm: Float, exact: [Double], exactNorm: Double, noise: Double, normNoise: Double, scale: Double) {
        self.name = name; self.ours = ours; self.ourNorm = ourNorm; self.exact = exact; self.exactNorm = exactNorm
        self.noise = noise; self.normNoise = normNoise; self.scale = scale
    }
}

/// Which truth one mode's gradient checks were judged against: "base", a flipped gate or a flipped pair ("A + B").
public struct GatePattern: Sendable, Equatable {
    public let mode: String
    public let pattern: String
    /// When no truth passes: the truth that leaves the fewest checks failing, and how many (a hint
    /// for tracing, never a verdict: the failures are reported against the base answer).
    public var closest: (label: String, failing: Int)? = nil

    public init(mode: String, pattern: String, closest: (label: String, failing: Int)? = nil) {
        self.mode = mode; self.pattern = pattern; self.closest = closest
    }

    public static func == (a: GatePattern, b: GatePattern) -> Bool {
        a.mode == b.mode && a.pattern == b.pattern && a.closest?.label == b.closest?.label && a.closest?.failing == b.closest?.failing
    }

    /// The line `finch compare` prints, e.g. "gates (eval): blocks.1.1.bn2.act[4,15,2,12]".
    public var line: String {
        "gates (\(mode)): \(pattern)" + (closest.map { "; no flip passes (closest: \($0.label), \($0.failing) failing)" } ?? "")
    }
}

extension ParityComparison {
    /// The gradient checks of one mode (`prefix` grad or evalgrad) against the float64 answer and,
    /// when it fails, against each flipped truth of that mode (one gate, or a pair the fixture ran
    /// together in float64): the mode passes when one truth makes every one of its checks pass the
    /// rule with the same 14-order noise. A truth only changes the answer where the fixture stores
    /// its effect, so a check it does not move is judged as against the base; mixing truths across
    /// checks is not allowed (a single float32 run crosses one kink or the other, for every output
    /// at once). The fixture stores no full gradient, so gate sets are never composed here: only a
    /// set the fixture stores (with its own norms) is a truth. Among passing truths the one with
    /// the smallest worst ratio is reported. With `crossed` (Finch's own side of each admissible
    /// gate in this forward, GateObservation), a truth counts only if Finch crossed every one of its
    /// gates (a gate Finch's forward cannot be read at counts as crossed): a truth Finch did not take
    /// is no explanation of its numbers, however close it lands.
    public static func judgeGradients(prefix: String, mode: String, inputs: [GradientInput], flips: [GateFlip],
                                      crossed: [GateSide]? = nil) -> (GatePattern?, [ParityCheck]) {
        let base = gradientChecks(prefix: prefix, inputs: inputs, flip: nil)
        var candidates = flips.filter { $0.mode == mode }
        if let crossed {
            let sides = Dictionary(crossed.filter { $0.gate.mode == mode }.map { ($0.gate.label, $0) }, uniquingKeysWith: { a, _ in a })
            candidates = candidates.filter { $0.gates.allSatisfy { sides[$0].map { $0.finch == nil || $0.flipped } ?? true } }
        }
        guard flips.contains(where: { $0.mode == mode }) else { return (nil, base) }
        if base.allSatisfy(\.passed) { return (GatePattern(mode: mode, pattern: "base"), base) }
        var best: (GateFlip, [ParityCheck], Float)? = nil
        var closest: (label: String, failing: Int) = ("base", base.filter { !$0.passed }.count)
        for f in candidates {
            let checks = gradientChecks(prefix: prefix, inputs: inputs, flip: f)
            let failing = checks.filter { !$0.passed }.count
            if failing < closest.failing { closest = (f.label, failing) }
            guard failing == 0 else { continue }
            let worst = checks.compactMap(\.ratio).max() ?? 0
            if best == nil || worst < best!.2 { best = (f, checks, worst) }
        }
        guard let best else {
            return (GatePattern(mode: mode, pattern: "base", closest: closest.label == "base" ? nil : closest), base)
        }
        return (GatePattern(mode: mode, pattern: best.0.label), best.1)
    }

    /// Probe and norm checks per parameter against the base answer or with `flip` applied.
    static func gradientChecks(prefix: String, inputs: [GradientInput], flip: GateFlip?) -> [ParityCheck] {
        var checks: [ParityCheck] = []
        checks.reserveCapacity(2 * inputs.count)
        for g in inputs {
            var exact = g.exact, norm = g.exactNorm
            if let flip {
                if let d = flip.probeDelta[g.name], d.count == exact.count { for i in exact.indices { exact[i] += d[i] } }
                if let n = flip.norm[g.name] { norm = n }
            }
            checks.append(againstFloat64("\(prefix).\(g.name)", g.ours, exact, noise: g.noise, scale: g.scale))
            checks.append(againstFloat64("\(prefix).norm.\(g.name)", [g.ourNorm], [norm], noise: g.normNoise, scale: norm))
        }
        return checks
    }
}
