import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchOptim

/// One numeric comparison of Finch against a PyTorch reference.
public struct ParityCheck: Sendable {
    public let name: String
    public let maxAbs: Float
    public let maxRel: Float
    public let tolerance: String
    public let passed: Bool
    /// Where the float64 rule judged this check: Finch's distance to float64 ÷ PyTorch float32's
    /// (the larger of its NCHW and channels-last runs). Nil for checks against a fixed tolerance.
    public var ratio: Float? = nil
}

public struct ParityReport: Sendable {
    public let model: String
    public let source: String
    public let checks: [ParityCheck]
    /// Per mode with gate flips in the fixture, the truth its gradient checks were judged against.
    public var gates: [GatePattern] = []

    public var passed: Bool { checks.allSatisfy(\.passed) }
    public var failures: [ParityCheck] { checks.filter { !$0.passed } }

    /// The closing line `finch compare` prints (fixed format).
    public var verdict: String {
        let ok = checks.filter(\.passed).count
        return passed ? "compare: PASS \(ok)/\(checks.count) checks" : "compare: FAIL \(checks.count - ok)/\(checks.count) checks"
    }

    /// Worst relative error per check family (eval logits, train logits, loss, grads, buffers, adamw).
    public var summary: String {
        var families: [String: (Float, Float)] = [:]
        for c in checks {
            let key = Self.family(of: c.name)
            let cur = families[key] ?? (0, 0)
            families[key] = (max(cur.0, c.maxAbs), max(cur.1, c.maxRel))
        }
        let ratios = worstRatios
        let parts = families.keys.sorted().map { k in
            "\(k): max|Δ|=\(sci(families[k]!.0)) rel=\(sci(families[k]!.1))" + (ratios[k].map { " ratio=\(ratioText($0))" } ?? "")
        }
        return "\(model) (\(source)): " + parts.joined(separator: "; ") + " — " + verdict
    }

    /// The family a check belongs to: eval.logits, train.logits, train.loss, grad (tensors and norms),
    /// train (BatchNorm buffers), adamw, adamw_step; evalgrad (eval-mode gradients, pretrained cases).
    public static func family(of name: String) -> String {
        if name.hasPrefix("eval.") || name.hasPrefix("train.logits") || name.hasPrefix("train.loss") { return name }
        return name.split(separator: ".").first.map(String.init) ?? name
    }

    /// Worst Finch ÷ PyTorch-float32 distance to float64 per family, over the checks the float64 rule judged.
    public var worstRatios: [String: Float] {
        var worst: [String: Float] = [:]
        for c in checks { if let r = c.ratio { worst[Self.family(of: c.name)] = max(worst[Self.family(of: c.name)] ?? 0, r) } }
        return worst
    }
}

/// A ratio of distances for printing: "0.84", "12.3", or "inf" where PyTorch landed exactly on float64.
public func ratioText(_ r: Float) -> String {
    r.isFinite ? String(format: r < 10 ? "%.2f" : "%.1f", Double(r)) : "inf"
}

func sci(_ x: Float) -> String {
    guard x.isFinite, x != 0 else { return x == 0 ? "0" : "\(x)" }
    let e = Int(Foundation.floor(log10(Double(Swift.abs(x)))))
    let m = Double(x) / Foundation.pow(10, Double(e))
    return String(format: "%.2fe%+03d", m, e)
}

public enum ParityError: Error, CustomStringConvertible {
    case missingKey(file: String, key: String)
    case badMetadata(file: String, key: String, value: String?)
    case badValue(file: String, key: String, reason: String)
    /// A gate flip (metadata `flips` or a `flip.<j>.*` tensor) that does not fit the fixture.
    case invalidFlips(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case .invalidFlips(let f, let k, let r): return "\(f): gate flips: '\(k)' \(r)"
        case .missingKey(let f, let k): return "\(f): reference has no tensor '\(k)'"
        case .badValue(let f, let k, let r): return "\(f): tensor '\(k)' \(r)"
        case .badMetadata(let f, let k, let v): return "\(f): metadata '\(k)' is \(v.map { "'\($0)'" } ?? "missing") — expected a valid value"
        }
    }
}

/// Builds a zoo model from a reference file's metadata and compares it with PyTorch's numbers.
///
/// Reference kinds: full bundles (`make_golden.py`, weights.* keys, full gradients and AdamW
/// results), compact fixtures (`format=finch-parity-v1|v2`, gradient norms and probes; procedural
/// weights, or stored weights for the pretrained cases). Without float64 data the tolerances are
/// the project's: logits 1e-4 (abs or rel), loss 1e-4 rel, gradients 1e-3 of the tensor's largest
/// magnitude, buffers 1e-4, AdamW 1e-5. With it (`f64.*` and `noise.*`: make_golden.py --f64,
/// finch-parity-v2), logits, loss, gradients and BatchNorm buffers follow the float64 rule
/// (`againstFloat64`).
public enum ParityComparison {
    /// The float64 rule's factor: Finch may be this many times as far from float64 as PyTorch's
    /// float32 is (the larger of its NCHW and channels-last runs).
    public static let noiseFactor: Double = 3
    /// The float64 rule's absolute floor, in float32 ulps of the output's scale. A float32 result is
    /// already up to ½ ulp from the exact value once stored, and two valid summation orders differ
    /// by a few ulps of the largest term; where both PyTorch paths happen to land on float64 to the
    /// last bit (short sums, exact products) 3 × 0 would demand bit-identity with PyTorch. Four ulps
    /// (4·2⁻²³ ≈ 4.8·10⁻⁷ of the scale) is far below any real bug (10⁻⁴ relative and up).
    public static let floorUlps: Double = 4

    /// Builds the reference's model with its weights, runs it as PyTorch did, and checks every
    /// output the reference holds (in this order: eval logits, eval-mode gradients, train logits and
    /// loss, gradients, BatchNorm buffers, one AdamW step).
    public static func run(referenceAt url: URL) throws -> ParityReport {
        let run = try ParityRun(url: url)
        var checks = try run.evalChecks()
        let (trainChecks, refs) = try run.trainChecks()
        checks += trainChecks
        checks += try run.bufferChecks()
        checks += try run.adamwChecks(refs: refs)
        var report = ParityReport(model: run.modelName, source: run.path, checks: checks)
        report.gates = run.gates.patterns
        return report
    }

    typealias GradientReference = (values: [Float], ours: [Float], norm: Float, ourNorm: Float, count: Int)

    /// Gradients against a reference without float64 data, or a v1 compact fixture (one path's
    /// error only): the fixed tolerances, unchanged.
    static func fixedToleranceGradientChecks(file: SafeTensorsFile, params: [(name: String, tensor: Tensor)], refs: [String: GradientReference],
                                             compact: Bool, into checks: inout [ParityCheck]) throws {
        let path = URL(fileURLWithPath: file.path).lastPathComponent
        func tensor(_ k: String) throws -> Tensor {
            guard file.info(k) != nil else { throw ParityError.missingKey(file: path, key: k) }
            return try file.tensor(k)
        }
        // Gradients that are analytically zero (a bias feeding a train-mode BatchNorm through linear
        // ops) hold only float32 rounding noise in both frameworks. Its size is set by the model's
        // gradient scale, so differences below 1e-5 of the largest reference gradient are noise.
        let gradientScale = refs.values.map { $0.values.map(Swift.abs).max() ?? 0 }.max() ?? 0
        let noiseFloor = 1e-5 * gradientScale
        // How far float32 itself strays in this model's train-mode backward: the largest error
        // PyTorch's float32 gradients make anywhere against the float64 reference. Ill-conditioned
        // fixtures (BatchNorm over 8–18 values per channel) reach 1e-2 and more, and whichever
        // tensor lands just past 3× PyTorch's own per-tensor error then depends on the CPU's BLAS
        // kernels. A wrong gradient is off by O(1), far beyond this.
        var modelNoise: Float = 0
        if compact {
            for (name, _) in params where file.info("grad.torch32err.\(name)") != nil {
                modelNoise = max(modelNoise, try tensor("grad.torch32err.\(name)").item)
            }
        }
        for (name, _) in params {
            let r = refs[name]!
            // The design's scale is the tensor's largest gradient; compact fixtures store it.
            let scale = compact && file.info("grad.absmax.\(name)") != nil ? try tensor("grad.absmax.\(name)").item
                : max(r.values.map(Swift.abs).max() ?? 0, compact ? r.norm / Float(max(r.count, 1)).squareRoot() : 0)
            // Against a float64 reference, Finch must land within 1e-3 of the tensor's largest
            // gradient, or as close as PyTorch's own float32 does on this tensor (×3), or within
            // the worst float32 error PyTorch makes anywhere in this model's backward.
            let torchErr = compact && file.info("grad.torch32err.\(name)") != nil ? try tensor("grad.torch32err.\(name)").item : 0
            let tol = max(1e-3, 3 * torchErr, modelNoise)
            var c = scaled("grad.\(name)", r.ours, r.values, scale: scale, tol: tol)
            if !c.passed && c.maxAbs <= noiseFloor { c = ParityCheck(name: c.name, maxAbs: c.maxAbs, maxRel: c.maxRel, tolerance: "rounding floor \(sci(noiseFloor))", passed: true) }
            checks.append(c)
            if compact {
                var n = relative("grad.norm.\(name)", r.ourNorm, r.norm, tol: tol)
                let floor = noiseFloor * Float(r.count).squareRoot()
                if !n.passed && n.maxAbs <= floor { n = ParityCheck(name: n.name, maxAbs: n.maxAbs, maxRel: n.maxRel, tolerance: "rounding floor \(sci(floor))", passed: true) }
                checks.append(n)
            }
        }
    }

    /// The float64 rule: Finch's largest distance to the exact answer ≤ noiseFactor × PyTorch
    /// float32's (`noise`) + floorUlps float32 ulps of `scale` (the output's largest exact magnitude).
    /// Only a bug, not a summation order, can make Finch several times worse than PyTorch's worse path.
    public static func againstFloat64(_ name: String, _ ours: [Float], _ exact: [Double], noise: Double, scale: Double) -> ParityCheck {
        guard ours.count == exact.count else {
            return ParityCheck(name: name, maxAbs: .infinity, maxRel: .infinity, tolerance: "size \(exact.count)", passed: false)
        }
        var dist = 0.0
        for (x, e) in zip(ours, exact) { dist = max(dist, Swift.abs(Double(x) - e)) }
        if ours.contains(where: { !$0.isFinite }) { dist = .infinity }
        let floor = floorUlps * Double(Float(scale).ulp)
        let tol = noiseFactor * noise + floor
        let ratio: Float = dist == 0 ? 0 : noise > 0 ? Float(dist / noise) : .infinity
        return ParityCheck(name: name, maxAbs: Float(dist), maxRel: scale > 0 ? Float(dist / scale) : Float(dist),
                           tolerance: "\(Int(noiseFactor))×torch32 \(sci(Float(noise))) + \(Int(floorUlps)) ulp \(sci(Float(floor)))",
                           passed: dist <= tol, ratio: ratio)
    }

    struct AdamWHyperParameters { var lr: Float; var betas: (Float, Float); var eps: Float; var weightDecay: Float }

    /// Accepts JSON or the Python dict repr the shared bundles carry ("{'lr': 0.001, 'betas': (0.9, 0.999), …}").
    static func adamwHyperParameters(_ text: String?, file: String) throws -> AdamWHyperParameters {
        guard let text else { throw ParityError.badMetadata(file: file, key: "adamw", value: nil) }
        let json = text.replacingOccurrences(of: "'", with: "\"").replacingOccurrences(of: "(", with: "[")
            .replacingOccurrences(of: ")", with: "]")
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let lr = (obj["lr"] as? NSNumber)?.floatValue,
              let betas = obj["betas"] as? [NSNumber], betas.count == 2,
              let eps = (obj["eps"] as? NSNumber)?.floatValue,
              let wd = (obj["weight_decay"] as? NSNumber)?.floatValue else {
            throw ParityError.badMetadata(file: file, key: "adamw", value: text)
        }
        return AdamWHyperParameters(lr: lr, betas: (betas[0].floatValue, betas[1].floatValue), eps: eps, weightDecay: wd)
    }

    /// Each element within `tol` absolute or `tol` relative.
    static func elementwise(_ name: String, _ a: [Float], _ b: [Float], tol: Float) -> ParityCheck {
        guard a.count == b.count else { return ParityCheck(name: name, maxAbs: .infinity, maxRel: .infinity, tolerance: "size \(b.count)", passed: false) }
        var maxAbs: Float = 0, maxRel: Float = 0, ok = true
        for (x, y) in zip(a, b) {
            let d = Swift.abs(x - y), r = d / max(Swift.abs(y), .leastNormalMagnitude)
            maxAbs = max(maxAbs, d)
            maxRel = max(maxRel, min(r, d == 0 ? 0 : r))
            if !(d <= tol || r <= tol) { ok = false }
        }
        return ParityCheck(name: name, maxAbs: maxAbs, maxRel: maxRel, tolerance: "\(tol) abs or rel", passed: ok)
    }

    /// max|Δ| ≤ tol × scale (the reference tensor's largest magnitude).
    static func scaled(_ name: String, _ a: [Float], _ b: [Float], scale: Float, tol: Float) -> ParityCheck {
        let maxAbs = zip(a, b).reduce(Float(0)) { max($0, Swift.abs($1.0 - $1.1)) }
        let rel = scale > 0 ? maxAbs / scale : maxAbs
        let ok = a.count == b.count && (maxAbs <= tol * scale || maxAbs <= 1e-7)
        return ParityCheck(name: name, maxAbs: maxAbs, maxRel: rel, tolerance: "\(tol) of max|ref|", passed: ok)
    }

    static func relative(_ name: String, _ a: Float, _ b: Float, tol: Float) -> ParityCheck {
        let d = Swift.abs(a - b), r = d / max(Swift.abs(b), .leastNormalMagnitude)
        return ParityCheck(name: name, maxAbs: d, maxRel: r, tolerance: "\(tol) rel", passed: r <= tol || d <= 1e-7)
    }

    static func absolute(_ name: String, _ a: [Float], _ b: [Float], tol: Float) -> ParityCheck {
        let maxAbs = zip(a, b).reduce(Float(0)) { max($0, Swift.abs($1.0 - $1.1)) }
        let maxRel = zip(a, b).reduce(Float(0)) { max($0, Swift.abs($1.0 - $1.1) / max(Swift.abs($1.1), .leastNormalMagnitude)) }
        return ParityCheck(name: name, maxAbs: maxAbs, maxRel: maxRel, tolerance: "\(tol) abs",
                           passed: a.count == b.count && maxAbs <= tol)
    }
}
