import Foundation
import FinchTensor
import FinchNN
import FinchIO
import FinchOptim

/// One reference file checked against Finch: the model built and filled as the reference was, the
/// input and labels, and the reference's values read with validation. `ParityComparison.run` calls
/// its steps in order; the model's state carries from one step to the next (gradients of the
/// train step feed the AdamW step), as in the PyTorch script that made the reference.
struct ParityRun {
    let file: SafeTensorsFile
    let path: String
    let meta: [String: String]
    let modelName: String
    let model: ImageClassifier
    /// Compact fixtures store gradient probes and norms instead of full tensors.
    let compact: Bool
    /// The float64 rule applies when the reference carries the exact answer and PyTorch's noise.
    let float64: Bool
    let input: Tensor
    let labels: [Int]
    /// Admissible gate flips (make_parity.py `flip.*`): alternative float64 truths per mode.
    let flips: [GateFlip]
    /// The admissible gates the file lists, whose side of the kink Finch's own forward is read at
    /// (GateObservation): a truth counts only if Finch crossed its gates.
    let admissible: [AdmissibleGate]
    /// The truth each mode was judged against, filled as the steps run (a class: the steps are non-mutating).
    final class Patterns { var patterns: [GatePattern] = [] }
    let gates = Patterns()

    init(url: URL) throws {
        file = try SafeTensorsFile(contentsOf: url)
        path = url.lastPathComponent
        meta = file.metadata
        guard let name = meta["model"] else { throw ParityError.badMetadata(file: path, key: "model", value: nil) }
        guard let classes = meta["num_classes"].flatMap(Int.init), classes > 0 else {
            throw ParityError.badMetadata(file: path, key: "num_classes", value: meta["num_classes"])
        }
        modelName = name
        model = try ModelRegistry.create(name, numClasses: classes)
        compact = meta["format"]?.hasPrefix("finch-parity") ?? false
        float64 = file.contains("f64.train.loss") && file.contains("noise.train.loss")
        try Self.fill(model, from: file, path: path, procedural: meta["weights"] == "procedural")
        input = try Self.readInput(file: file, meta: meta, path: path)
        labels = try file.int64s("target").map { Int($0) }
        guard labels.count == input.shape.first, labels.allSatisfy({ (0..<classes).contains($0) }) else {
            throw ParityError.badValue(file: path, key: "target", reason: "must hold one class in 0..<\(classes) per input image")
        }
        if compact && float64 {
            flips = try GateFlips.read(file: file, path: path, parameters: model.namedParameters().map { $0.0 },
                                       evalGradients: file.names.contains { $0.hasPrefix("f64.evalgrad.probe.") })
        } else {
            flips = []
            if let stray = file.names.first(where: { $0.hasPrefix("flip.") }) ?? (meta["flips"] != nil ? "flips" : nil) {
                throw ParityError.invalidFlips(file: path, key: stray, reason: "needs a compact fixture with float64 data (format finch-parity-v2)")
            }
        }
        admissible = flips.isEmpty ? [] : try GateFlips.admissible(file: file, path: path)
        // Validated before any compute: a bad noise value would otherwise surface minutes later.
        if float64 { for k in file.names where k.hasPrefix("noise.") { _ = try noise(String(k.dropFirst("noise.".count))) } }
    }

    static func fill(_ model: ImageClassifier, from file: SafeTensorsFile, path: String, procedural: Bool) throws {
        if procedural { return try ProceduralWeights.fill(model) }
        var sd: [String: StateValue] = [:]
        for name in file.names where name.hasPrefix("weights.") {
            let key = String(name.dropFirst("weights.".count))
            if let info = file.info(name), info.dtype.isInteger {
                sd[key] = .int64(try file.int64s(name), shape: info.shape)
            } else {
                sd[key] = .float(try file.tensor(name))
            }
        }
        do { try model.load(stateDict: sd) } catch var e as StateDictError {
            e.source = path
            throw e
        }
    }

    static func readInput(file: SafeTensorsFile, meta: [String: String], path: String) throws -> Tensor {
        guard file.info("input") == nil && meta["input"] == "procedural" else {
            guard file.info("input") != nil else { throw ParityError.missingKey(file: path, key: "input") }
            return try file.tensor("input")
        }
        // v2 fixtures recompute the input rather than store it (2.4 MB at 224 px batch 4).
        guard let batch = meta["batch"].flatMap(Int.init), (1...1024).contains(batch) else {
            throw ParityError.badMetadata(file: path, key: "batch", value: meta["batch"])
        }
        guard let res = meta["resolution"].flatMap(Int.init), (1...2048).contains(res) else {
            throw ParityError.badMetadata(file: path, key: "resolution", value: meta["resolution"])
        }
        return ProceduralWeights.input(batch: batch, resolution: res)
    }

    // MARK: Reading the reference

    func tensor(_ k: String) throws -> Tensor {
        guard file.info(k) != nil else { throw ParityError.missingKey(file: path, key: k) }
        return try file.tensor(k)
    }

    /// Float64 references exactly (other float dtypes widen); every value must be finite.
    func doubles(_ k: String) throws -> [Double] {
        guard let info = file.info(k) else { throw ParityError.missingKey(file: path, key: k) }
        let values: [Double]
        if info.dtype == .f64 {
            let raw = try file.rawBytes(k)
            values = raw.withUnsafeBytes { p in
                (0..<(raw.count / 8)).map { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            }
        } else {
            values = try file.tensor(k).scalars.map(Double.init)
        }
        guard values.allSatisfy(\.isFinite) else { throw ParityError.badValue(file: path, key: k, reason: "holds a value that is not finite") }
        return values
    }

    /// PyTorch float32's distance to float64 for one output: one finite, non-negative number.
    func noise(_ k: String) throws -> Double {
        let v = try doubles("noise." + k)
        guard v.count == 1, v[0] >= 0 else { throw ParityError.badValue(file: path, key: "noise." + k, reason: "must be one non-negative number, has \(v.prefix(4))") }
        return v[0]
    }

    func torchError(_ key: String) throws -> Float { file.info(key) != nil ? try tensor(key).item : 0 }

    /// Against float64 references, Finch must be as close to exact as PyTorch float32 is (×3),
    /// and within the design tolerance whenever that is looser.
    func outputCheck(_ key: String, _ ours: [Float], alsoNoise: Double = 0) throws -> ParityCheck {
        if float64 {
            let exact = try doubles("f64." + key)
            return ParityComparison.againstFloat64(key, ours, exact, noise: max(try noise(key), alsoNoise), scale: exact.map(Swift.abs).max() ?? 0)
        }
        return ParityComparison.elementwise(key, ours, try tensor(key).scalars, tol: max(1e-4, 3 * (try torchError(key + ".torch32err"))))
    }

    static func norm(_ g: [Float]) -> Float { Float(g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()) }

    // MARK: Steps

    /// Eval-mode logits, and for pretrained cases the eval-mode backward (BatchNorm on running
    /// statistics), the well-conditioned one with trained weights (make_pretrained_parity.py says why).
    func evalChecks() throws -> [ParityCheck] {
        model.eval()
        let evalLogits = noGrad { model(input) }
        var checks = [try outputCheck("eval.logits", evalLogits.scalars)]
        guard float64 && file.names.contains(where: { $0.hasPrefix("f64.evalgrad.probe.") }) else { return checks }
        let observation = admissible.isEmpty ? nil : GateObservation(model: model, gates: admissible, mode: "eval")
        Loss.crossEntropy(model(input), labels: labels).backward()
        let crossed = observation?.finish()
        var inputs: [GradientInput] = []
        for (name, p) in model.namedParameters() {
            let g = p.grad?.scalars ?? [Float](repeating: 0, count: p.count)
            let idx = try file.int64s("grad.index.\(name)").map { Int($0) }
            let exact = try doubles("f64.evalgrad.probe.\(name)"), norm = try doubles("f64.evalgrad.norm.\(name)")
            guard idx.allSatisfy({ (0..<p.count).contains($0) }), exact.count == idx.count, norm.count == 1 else {
                throw ParityError.badValue(file: path, key: "f64.evalgrad.probe.\(name)", reason: "does not match grad.index.\(name)")
            }
            inputs.append(GradientInput(name: name, ours: idx.map { g[$0] }, ourNorm: Self.norm(g), exact: exact, exactNorm: norm[0],
                                        noise: try noise("evalgrad.\(name)"),
                                        normNoise: max(try noise("evalgrad.norm.\(name)"), try noise("evalgrad.\(name)")),
                                        scale: Double(try tensor("evalgrad.absmax.\(name)").item)))
        }
        let (pattern, gradChecks) = ParityComparison.judgeGradients(prefix: "evalgrad", mode: "eval", inputs: inputs, flips: flips, crossed: crossed)
        if let pattern { gates.patterns.append(pattern) }
        checks += gradChecks
        model.zeroGrad()
        return checks
    }

    /// One train-mode forward and backward: logits, loss and every parameter's gradient. Returns
    /// the gradient references too, which the AdamW step needs.
    func trainChecks() throws -> ([ParityCheck], [String: ParityComparison.GradientReference]) {
        model.train()
        let observation = admissible.isEmpty ? nil : GateObservation(model: model, gates: admissible, mode: "train")
        let trainLogits = model(input)
        let crossed = observation?.finish()
        let loss = Loss.crossEntropy(trainLogits, labels: labels)
        loss.backward()
        var checks = [try outputCheck("train.logits", trainLogits.scalars)]
        // A scalar's noise from two float32 samples is itself noisy: an equally good third path lands
        // past 3× the larger of two about 6 % of the time. So a scalar reduced from a tensor may also
        // move as far as that tensor's elementwise noise: the loss as far as the train logits'
        // (∂loss/∂z sums to at most 2 in absolute value per sample, and the loss is a batch mean).
        checks.append(try outputCheck("train.loss", [loss.item], alsoNoise: float64 ? try noise("train.logits") : 0))

        let params = model.namedParameters()
        // Reference gradients per parameter: full tensors, or probes plus the full norm.
        var refs: [String: ParityComparison.GradientReference] = [:]
        var exactGrads: [String: (values: [Double], norm: Double)] = [:]
        for (name, p) in params {
            let g = p.grad?.scalars ?? [Float](repeating: 0, count: p.count)
            let ourNorm = Self.norm(g)
            if compact {
                let idx = try file.int64s("grad.index.\(name)").map { Int($0) }
                guard idx.allSatisfy({ (0..<p.count).contains($0) }) else {
                    throw ParityError.badValue(file: path, key: "grad.index.\(name)", reason: "has a position outside 0..<\(p.count)")
                }
                if float64 {
                    let probe = try doubles("f64.grad.probe.\(name)"), norm = try doubles("f64.grad.norm.\(name)")
                    guard probe.count == idx.count, norm.count == 1 else {
                        throw ParityError.badValue(file: path, key: "f64.grad.probe.\(name)", reason: "does not match grad.index.\(name)")
                    }
                    exactGrads[name] = (probe, norm[0])
                    refs[name] = (probe.map { Float($0) }, idx.map { g[$0] }, Float(norm[0]), ourNorm, p.count)
                } else {
                    refs[name] = (try tensor("grad.probe.\(name)").scalars, idx.map { g[$0] }, try tensor("grad.norm.\(name)").item, ourNorm, p.count)
                }
            } else {
                let ref = try tensor("grad.\(name)").scalars
                refs[name] = (ref, g, Self.norm(ref), ourNorm, p.count)
                if float64 {
                    let exact = try doubles("f64.grad.\(name)")
                    exactGrads[name] = (exact, exact.reduce(0.0) { $0 + $1 * $1 }.squareRoot())
                }
            }
        }
        guard float64 else {
            try ParityComparison.fixedToleranceGradientChecks(file: file, params: params, refs: refs, compact: compact, into: &checks)
            return (checks, refs)
        }
        var inputs: [GradientInput] = []
        for (name, _) in params {
            let r = refs[name]!, e = exactGrads[name]!
            // The scale of a gradient tensor is its largest exact value (compact fixtures store it).
            let scale = compact ? Double(try tensor("grad.absmax.\(name)").item) : (e.values.map(Swift.abs).max() ?? 0)
            if compact {
                // The norm, like the loss, is a scalar: it may move as far as one element's noise
                // (| |g + δ| − |g| | ≤ |δ|, of the order of max|δ| for rounding spread over the tensor).
                let normNoise = max(try noise("grad.norm.\(name)"), try noise("grad.\(name)"))
                inputs.append(GradientInput(name: name, ours: r.ours, ourNorm: r.ourNorm, exact: e.values, exactNorm: e.norm,
                                            noise: try noise("grad.\(name)"), normNoise: normNoise, scale: scale))
            } else {
                checks.append(ParityComparison.againstFloat64("grad.\(name)", r.ours, e.values, noise: try noise("grad.\(name)"), scale: scale))
            }
        }
        if compact {
            let (pattern, gradChecks) = ParityComparison.judgeGradients(prefix: "grad", mode: "train", inputs: inputs, flips: flips, crossed: crossed)
            if let pattern { gates.patterns.append(pattern) }
            checks += gradChecks
        }
        return (checks, refs)
    }

    /// BatchNorm running statistics and counters after the train step.
    func bufferChecks() throws -> [ParityCheck] {
        // The buffers' reference error is one maximum over the whole model; where two float32
        // implementations' maxima fall varies by CPU (Finch measured at 3.35× PyTorch's on one
        // fixture with AVX-512 kernels, under 3× with SSE3 ones). A semantic slip (biased instead
        // of unbiased running_var, wrong momentum) is off by 1/(n−1) or more, far beyond 5×.
        let bufferTol = float64 ? 0 : max(1e-4, 5 * (try torchError("train.buffers.torch32err")))
        var checks: [ParityCheck] = []
        for (path, m) in model.namedModules() {
            guard let bn = m as? BatchNorm2d else { continue }
            let prefix = path.isEmpty ? "" : path + "."
            if float64 && file.contains("f64.train.\(prefix)running_mean") {
                checks.append(try outputCheck("train.\(prefix)running_mean", bn.runningMean.scalars))
                checks.append(try outputCheck("train.\(prefix)running_var", bn.runningVar.scalars))
            } else {
                checks.append(ParityComparison.elementwise("train.\(prefix)running_mean", bn.runningMean.scalars,
                                                           try tensor("train.\(prefix)running_mean").scalars, tol: bufferTol))
                checks.append(ParityComparison.elementwise("train.\(prefix)running_var", bn.runningVar.scalars,
                                                           try tensor("train.\(prefix)running_var").scalars, tol: bufferTol))
            }
            let counted = try file.int64s("train.\(prefix)num_batches_tracked")
            let same = counted.map { Float($0) } == bn.numBatchesTracked.values.map { Float($0) }
            checks.append(ParityCheck(name: "train.\(prefix)num_batches_tracked", maxAbs: same ? 0 : 1, maxRel: same ? 0 : 1,
                                      tolerance: "exact", passed: same))
        }
        return checks
    }

    /// One AdamW step, twice per parameter: Finch's optimizer on PyTorch's gradients, and end to end
    /// on Finch's own gradients.
    func adamwChecks(refs: [String: ParityComparison.GradientReference]) throws -> [ParityCheck] {
        let hp = try ParityComparison.adamwHyperParameters(meta["adamw"], file: path)
        let params = model.namedParameters()
        var before: [String: [Float]] = [:]
        for (name, p) in params { before[name] = p.scalars }
        let opt = AdamW(groups: [ParamGroup(parameters: params, lr: hp.lr, weightDecay: hp.weightDecay)], betas: hp.betas, eps: hp.eps)
        opt.step()
        var checks: [ParityCheck] = []
        for (name, p) in params {
            let idx = compact ? try file.int64s("grad.index.\(name)").map { Int($0) } : Array(0..<p.count)
            let ref = try tensor(compact ? "adamw.probe.\(name)" : "adamw.\(name)").scalars
            let start = before[name]!, now = p.scalars
            let p0 = idx.map { start[$0] }
            let r = refs[name]!
            // 1. The optimizer alone: Finch's AdamW applied to PyTorch's own gradients.
            let pt = Tensor(p0, shape: [p0.count], requiresGrad: true)
            pt.grad = Tensor(r.values, shape: [r.values.count])
            AdamW(groups: [ParamGroup(parameters: [(name, pt)], lr: hp.lr, weightDecay: hp.weightDecay)], betas: hp.betas, eps: hp.eps).step()
            checks.append(ParityComparison.absolute("adamw.\(name)", pt.scalars, ref, tol: 1e-5))
            // 2. End to end with Finch's gradients. AdamW's first step is exactly
            //    p·(1 − lr·wd) − lr·g/(|g| + ε), so two gradients g, g' move p apart by
            //    lr·|g/(|g|+ε) − g'/(|g'|+ε)|: tiny where |g| ≫ ε, up to 2·lr where g is rounding
            //    noise of either sign. That propagated gradient difference is the tolerance.
            let ours = idx.map { now[$0] }
            var worst: Float = 0, ok = true
            func direction(_ g: Float) -> Double { Double(g) / (Double(Swift.abs(g)) + Double(hp.eps)) }
            for i in 0..<ref.count {
                let d = Swift.abs(ours[i] - ref[i])
                let propagated = Float(Double(hp.lr) * Swift.abs(direction(r.values[i]) - direction(r.ours[i])))
                worst = max(worst, d)
                if d > 1e-5 + 1.01 * propagated { ok = false }
            }
            checks.append(ParityCheck(name: "adamw_step.\(name)", maxAbs: worst, maxRel: 0,
                                      tolerance: "1e-5 + gradient difference propagated", passed: ok && ours.count == ref.count))
        }
        return checks
    }
}
