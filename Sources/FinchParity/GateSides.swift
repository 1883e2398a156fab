import Foundation
import FinchTensor
import FinchNN
import FinchIO

/// A ReLU/ReLU6 gate within the rule's reach of its kink (make_parity.py's admissible gates).
public struct AdmissibleGate: Sendable, Equatable {
    public let mode: String
    /// timm's module key, e.g. "blocks.1.1.bn2.act".
    public let gate: String
    /// The element, [n, c, h, w].
    public let index: [Int]
    public let kink: Double
    public let pre64: Double
    /// PyTorch's largest |pre32 − pre64| there over the 14 float32 orders.
    public let spread: Double

    public var label: String { "\(gate)[\(index.map(String.init).joined(separator: ","))]" }
    /// The ReLU6 upper kink, or none for ReLU (a fixture records kink 6 only for ReLU6 gates near it).
    func upper(relu6: Bool) -> Double { relu6 ? 6 : .infinity }
}

/// Where Finch's own forward puts one admissible gate: its float32 pre-activation, recomputed as the
/// backward recomputes it, and whether that lies on the other side of the kink than float64's.
public struct GateSide: Sendable {
    public let gate: AdmissibleGate
    /// Finch's pre-activation, nil when the gate is not a BatchNorm's activation in Finch (ResNet's
    /// act2 after the residual sum, a module called twice): not traced.
    public let finch: Float?
    /// Finch's gate passes a gradient (0 < z < upper) where float64's does not, or the reverse.
    public let flipped: Bool

    public var line: String {
        let g = gate
        guard let finch else { return "gate (\(g.mode)) \(g.label)  pre64=\(sci(g.pre64))  not traced" }
        let off = (Double(finch) - g.pre64) / g.spread
        return "gate (\(g.mode)) \(g.label)  pre64=\(sci(g.pre64)) spread=\(sci(g.spread)) finch=\(sci(Double(finch)))"
            + " (Δ = \(String(format: "%+.2f", off)) spreads)\(flipped ? "  FLIPPED" : "")"
    }

    private func sci(_ x: Double) -> String { String(format: "%+.3e", x) }
}

/// Finch's pre-activations at the admissible gates of one mode, read during a forward pass: each
/// gate maps to the BatchNorm whose fused activation it is (timm's `X.act` → `X`, ResNet's `X.actN`
/// → `X.bnN`); that BatchNorm's input is observed and normalised again exactly as its backward
/// recomputes it, so the sign read here is the one Finch's backward uses. Install, run the forward,
/// then `finish()` (which removes the observers).
final class GateObservation {
    let gates: [AdmissibleGate]
    private var observed: [BatchNorm2d] = []
    private var relu6: Set<String> = []
    private var values: [String: [[Int]: Float]] = [:]

    init(model: Module, gates all: [AdmissibleGate], mode: String) {
        gates = all.filter { $0.mode == mode }
        let modules = Dictionary(model.namedModules().map { ($0.name, $0.module) }, uniquingKeysWith: { a, _ in a })
        for key in Set(gates.map(\.gate)) {
            guard let bn = Self.batchNorm(for: key, in: modules) else { continue }
            if bn.activation == .relu6 { relu6.insert(key) }
            let indices = gates.filter { $0.gate == key }.map(\.index)
            bn.inputObserver = { [unowned self, unowned bn] x in self.record(key, indices, bn, x) }
            observed.append(bn)
        }
    }

    static func batchNorm(for key: String, in modules: [String: Module]) -> BatchNorm2d? {
        guard !key.contains("#") else { return nil }
        let parts = key.split(separator: ".").map(String.init)
        guard let leaf = parts.last else { return nil }
        let parent = parts.dropLast().joined(separator: ".")
        let name = leaf == "act" ? parent
            : leaf.hasPrefix("act") ? (parent.isEmpty ? "" : parent + ".") + "bn" + leaf.dropFirst(3) : nil
        guard let name, let bn = modules[name] as? BatchNorm2d, bn.activation == .relu || bn.activation == .relu6 else { return nil }
        return bn
    }

    private func record(_ key: String, _ indices: [[Int]], _ bn: BatchNorm2d, _ x: Tensor) {
        let training = bn.isTraining && !bn.usesRunningStatsAlways
        let z = noGrad {
            batchNorm2d(x, weight: bn.weight, bias: bn.bias, runningMean: training ? nil : bn.runningMean,
                        runningVar: training ? nil : bn.runningVar, training: training, momentum: bn.momentum, eps: bn.eps)
        }
        let shape = z.shape, flat = z.scalars
        for index in indices where index.count == shape.count && zip(index, shape).allSatisfy({ $0 < $1 }) {
            var at = 0
            for (i, n) in zip(index, shape) { at = at * n + i }
            values[key, default: [:]][index] = flat[at]
        }
    }

    func finish() -> [GateSide] {
        for bn in observed { bn.inputObserver = nil }
        observed = []
        return gates.map { g in
            guard let z = values[g.gate]?[g.index] else { return GateSide(gate: g, finch: nil, flipped: false) }
            let upper = g.upper(relu6: relu6.contains(g.gate))
            func open(_ v: Double) -> Bool { v > 0 && v < upper }
            return GateSide(gate: g, finch: z, flipped: open(Double(z)) != open(g.pre64))
        }
    }
}

extension ParityComparison {
    /// For `finch compare --gates`: runs the reference's eval-mode forward (with gradients, as the
    /// eval-gradient checks do) and its train-mode forward, and reports for every admissible gate
    /// the file lists which side of its kink Finch lands on (GateObservation).
    public static func gateSides(referenceAt url: URL) throws -> [GateSide] {
        let run = try ParityRun(url: url)
        let gates = try GateFlips.admissible(file: run.file, path: run.path)
        var sides: [GateSide] = []
        for mode in ["eval", "train"] where gates.contains(where: { $0.mode == mode }) {
            let observation = GateObservation(model: run.model, gates: gates, mode: mode)
            if mode == "eval" { run.model.eval() } else { run.model.train() }
            _ = run.model(run.input)
            sides += observation.finish()
        }
        return sides
    }
}
