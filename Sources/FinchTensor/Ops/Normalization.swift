import CFinchKernels

// Batch and layer normalisation with PyTorch semantics, as fused kernels with analytic
// backward passes (composing them from elementwise ops would take ~10 passes and as many
// temporaries per call).

/// Batch normalisation, `torch.nn.functional.batch_norm`, for x of shape [N, C, *]
/// (rank 4 for BatchNorm2d, rank 2 for BatchNorm1d).
///
/// Training normalises with the batch mean and biased variance over every axis but C, and —
/// when running stats are given — updates them in place, unrecorded:
/// running_mean ← (1 − m)·running_mean + m·mean, running_var ← (1 − m)·running_var + m·unbiased var.
/// Evaluation normalises with the running stats, making the op a per-channel affine map.
///
/// With an `activation`, the result is act(batch_norm(x)) as one recorded op (timm's `BatchNormAct2d`).
/// Only x is kept for the backward pass: the normalised map is recomputed from x and the
/// statistics there, so a training step holds one activation map per block instead of two.
public func batchNorm2d(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                        training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                        activation: FusedActivation = .identity) -> Tensor {
    let bn = BatchNormPass(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: training, momentum: momentum, eps: eps)
    let out = normalized(bn.x, mean: bn.mean, scale: bn.scale, shift: bn.shift, activation: activation)

    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    if !training && activation != .identity {
        ensure(!OpTrace.isTracing, "batchNorm2d: a fused activation cannot be traced; apply it separately")
    }
    let recorded = record(out, activation == .identity ? "batch_norm" : "batch_norm_act", inputs,
                  training ? nil : .batchNorm(epsilon: eps), operands: [x, weight, bias, runningMean, runningVar]) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        guard activation != .identity else { return bn.backward(dy, into: nil) }
        // dz = dy·act'(z) goes to a buffer of our own that the input gradient then overwrites.
        let dz = Tensor(uninitializedShape: bn.x.shape)
        activationGradient(dy, x: bn.x, mean: bn.mean, scale: bn.scale, shift: bn.shift, activation: activation, into: dz)
        return bn.backward(dz, into: dz)
    }
    // The output is rebuilt from what backward keeps here anyway, so the next convolution need
    // not keep it too (see SavedTensor).
    recorded.setRematerialize { normalized(bn.x, mean: bn.mean, scale: bn.scale, shift: bn.shift, activation: activation) }
    return recorded
}

/// act(batch_norm(x) + residual) as one recorded op: the end of a residual block in training
/// (ResNet's `relu(bn3(conv3(h)) + shortcut)`), with `batchNorm2d`'s arguments and the same bits as
/// the three ops it replaces: one pass over the maps forward where they took three, and the
/// activation's mask read from the output the next block rebuilds anyway.
///
/// Backward keeps what BatchNorm alone keeps (x and its statistics). With recomputation chains on
/// and a rebuildable residual, the output is rebuilt from those and the residual's recipe in one
/// pass, so a stage of blocks keeps only what its BatchNorms keep (see `Rebuilt`). `activation` is
/// `.identity` or `.relu`: the activation's gradient is taken from its output.
public func batchNorm2d(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                        training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                        adding residual: Tensor, then activation: FusedActivation) -> Tensor {
    ensure(activation == .identity || activation == .relu,
           "batchNorm2d: a residual's activation must be identity or relu, got \(activation)")
    ensure(residual.shape == x.shape, "batchNorm2d: residual of shape \(residual.shape) for input \(x.shape)")
    ensure(!OpTrace.isTracing, "batchNorm2d: a residual sum cannot be traced as one op; apply the three ops")
    let bn = BatchNormPass(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: training, momentum: momentum, eps: eps)
    let rd = residual.isContiguous ? residual.detach() : residual.copy()
    let out = normalized(bn.x, mean: bn.mean, scale: bn.scale, shift: bn.shift, activation: activation, adding: rd)

    // The output's recipe: BatchNorm's input and statistics plus the residual's own recipe.
    let chain = SavedActivations.chains ? residual.recipe : nil
    let rebuilt = chain.map { r in
        Rebuilt(depth: r.depth + 1) {
            let (values, owned) = r.transient()
            let dst = owned && values.isContiguous ? values : Tensor(uninitializedShape: bn.x.shape)
            return normalized(bn.x, mean: bn.mean, scale: bn.scale, shift: bn.shift, activation: activation,
                              adding: values, into: dst)
        }
    }
    // Without a recipe, ReLU's mask is the output itself, which the next convolution keeps anyway.
    let kept = activation == .relu && rebuilt == nil ? out.detach() : nil
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    inputs.append(residual)
    let needR = residual.requiresGrad
    let recorded = record(out, activation == .relu ? "batch_norm_add_relu" : "batch_norm_add", inputs, nil,
                          operands: [x, weight, bias, runningMean, runningVar, residual]) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        // dL/d(bn(x) + residual), which the sum hands to both of its operands.
        let dz = activation == .relu
            ? Kernels.zip(dy, kept ?? rebuilt!.value(), ReLUBackward.self, op: "relu_backward") : dy
        return bn.backward(dz, into: nil) + [needR ? dz : nil]
    }
    if let rebuilt { recorded.setRematerialize(rebuilt) }
    return recorded
}

/// What training- or evaluation-mode BatchNorm computes before its output and keeps for its
/// backward pass: the dense input, the statistics it normalised with, and y = (x − mean)·scale + shift's
/// per-channel factors. Making one updates the running statistics in training.
private struct BatchNormPass {
    let x: Tensor
    let weight: Tensor?
    let hasBias: Bool
    let mean: Tensor
    let invstd: Tensor
    let scale: [Float]
    let shift: [Float]
    let training: Bool
    let needX: Bool, needW: Bool, needB: Bool

    init(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
         training: Bool, momentum: Float, eps: Float) {
        ensure(x.rank >= 2, "batchNorm2d: input must be [N, C, *], got shape \(x.shape)")
        let n = x.shape[0], c = x.shape[1]
        let plane = Shape.count(Array(x.shape[2...]))
        let m = n * plane
        for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t {
                ensure(t.shape == [c], "batchNorm2d: \(name) of shape \(t.shape) for input \(x.shape) (expected [\(c)])")
            }
        }
        ensure((runningMean == nil) == (runningVar == nil),
                     "batchNorm2d: pass both runningMean and runningVar or neither")
        ensure(training || runningMean != nil, "batchNorm2d: evaluation mode needs running statistics")
        ensure(!training || m > 1,
                     "batchNorm2d: expected more than 1 value per channel when training, got input of shape \(x.shape)")

        if training, let runningMean, let runningVar {
            ensure(runningMean.isContiguous && runningVar.isContiguous,
                         "batchNorm2d: running statistics must be contiguous to be updated in place")
        }

        let xd = x.isContiguous ? x.detach() : x.copy()
        let wd = weight.map { $0.isContiguous ? $0.detach() : $0.copy() }
        let bd = bias.map { $0.isContiguous ? $0.detach() : $0.copy() }
        let src = xd.basePointer

        // The statistics the output was normalised with: batch stats in training, running stats in eval.
        let mean = Tensor(uninitializedShape: [c]), invstd = Tensor(uninitializedShape: [c])
        let mp = mean.basePointer, ip = invstd.basePointer
        if training {
            // Float lanes within one row, Float64 across rows: the mean and variance of 10⁵–10⁶
            // values per channel then lose nothing measurable, at the cost of two read passes.
            Parallel.forEach(c, grain: Swift.max(1, 16384 / Swift.max(m, 1))) { range in
                for ch in range {
                    var s: Double = 0
                    for i in 0..<n { s += Double(BatchNormKernels.sum(src + (i * c + ch) * plane, plane)) }
                    let mu = s / Double(m)
                    var q: Double = 0
                    for i in 0..<n {
                        q += Double(BatchNormKernels.sumSquaredDeviation(src + (i * c + ch) * plane, plane, mean: Float(mu)))
                    }
                    let variance = q / Double(m)
                    mp[ch] = Float(mu)
                    ip[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                    if let runningMean, let runningVar {
                        let rm = runningMean.basePointer, rv = runningVar.basePointer
                        rm[ch] = (1 - momentum) * rm[ch] + momentum * Float(mu)
                        rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(variance * Double(m) / Double(m - 1))
                    }
                }
            }
        } else if let runningMean, let runningVar {
            let rm = runningMean.contiguous(), rv = runningVar.contiguous()
            for ch in 0..<c {
                mp[ch] = rm.basePointer[ch]
                ip[ch] = 1 / (rv.basePointer[ch] + eps).squareRoot()
            }
        }

        // y = (x − mean)·(γ·invstd) + β. Subtracting first, as PyTorch does, matters: folding the mean
        // into the shift (x·scale + (β − mean·scale)) cancels catastrophically for a channel whose mean
        // is large against its spread, which training-mode statistics on small maps produce.
        var scale = [Float](repeating: 0, count: c), beta = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            scale[ch] = (wd?.basePointer[ch] ?? 1) * ip[ch]
            beta[ch] = bd?.basePointer[ch] ?? 0
        }
        self.x = xd
        self.weight = wd
        self.hasBias = bd != nil
        self.mean = mean
        self.invstd = invstd
        self.scale = scale
        self.shift = beta
        self.training = training
        needX = x.requiresGrad
        needW = weight?.requiresGrad ?? false
        needB = bias?.requiresGrad ?? false
    }

    /// [dx, dγ, dβ] (the last two only for a weight and a bias that were given) from dz, the
    /// gradient to BatchNorm's output before any activation. dx is written into `into` when given
    /// (it may be dz).
    func backward(_ dz: Tensor, into buffer: Tensor?) -> [Tensor?] {
        let n = x.shape[0], c = x.shape[1], plane = x.count / Swift.max(n * c, 1), m = n * plane
        let dx = needX ? (buffer ?? Tensor(uninitializedShape: x.shape)) : nil
        let dw = needW ? Tensor(uninitializedShape: [c]) : nil
        let db = needB ? Tensor(uninitializedShape: [c]) : nil
        let xp = x.basePointer, mp = mean.basePointer, ip = invstd.basePointer
        let gp = dz.basePointer
        let dxp = dx?.basePointer, dwp = dw?.basePointer, dbp = db?.basePointer
        let wp = weight?.basePointer
        let training = training
        // Σdz and Σdz·(x − mean) per channel feed dβ, dγ and, in training, the dx correction terms.
        let needSums = needW || needB || (needX && training)
        Parallel.forEach(c, grain: Swift.max(1, 16384 / Swift.max(m, 1))) { range in
            for ch in range {
                let mu = mp[ch], istd = ip[ch]
                var sumDy: Double = 0, sumDyXmu: Double = 0
                if needSums {
                    for i in 0..<n {
                        let off = (i * c + ch) * plane
                        let sums = BatchNormKernels.sums(gp + off, xp + off, plane, mean: mu)
                        sumDy += Double(sums.g)
                        sumDyXmu += Double(sums.gCentered)
                    }
                }
                dbp?[ch] = Float(sumDy)
                dwp?[ch] = Float(sumDyXmu) * istd
                guard let dxp else { continue }
                let a = (wp?[ch] ?? 1) * istd
                // Training: dx = γ·invstd·(dz − mean(dz) − x̂·mean(dz·x̂)), with x̂ = (x − mean)·invstd.
                // Evaluation: the statistics are constants, dx = γ·invstd·dz.
                let meanDy = training ? Float(sumDy / Double(m)) : 0
                let k = training ? Float(sumDyXmu / Double(m)) * istd * istd : 0
                for i in 0..<n {
                    let off = (i * c + ch) * plane
                    BatchNormKernels.inputGradient(gp + off, xp + off, dxp + off, plane, scale: a, meanG: meanDy, mean: mu, k: k)
                }
            }
        }
        var grads: [Tensor?] = [dx]
        if weight != nil { grads.append(dw) }
        if hasBias { grads.append(db) }
        return grads
    }
}

/// act((x − mean)·scale + shift [+ residual]) per channel of x [N, C, *], into `dst` (which may be
/// the residual) or a new tensor: BatchNorm's output, computed the same way each time so a rebuilt
/// output equals the first bit for bit.
@discardableResult
private func normalized(_ x: Tensor, mean: Tensor, scale: [Float], shift: [Float], activation: FusedActivation,
                        adding residual: Tensor? = nil, into dst: Tensor? = nil) -> Tensor {
    let n = x.shape[0], c = x.shape[1], plane = x.count / Swift.max(n * c, 1)
    let out = dst ?? Tensor(uninitializedShape: x.shape)
    let src = x.basePointer, dp = out.basePointer, mp = mean.basePointer
    let rp = residual.map { UnsafePointer($0.basePointer) }
    scale.withUnsafeBufferPointer { sc in
        shift.withUnsafeBufferPointer { bt in
            Parallel.forEach(n * c, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
                for u in range {
                    let o = u * plane
                    if let rp {
                        Kernels.residualActivation(src + o, rp + o, dp + o, plane, mean: mp[u % c], scale: sc[u % c],
                                                   shift: bt[u % c], activation)
                    } else {
                        Kernels.affineActivation(src + o, dp + o, plane, mean: mp[u % c], scale: sc[u % c],
                                                 shift: bt[u % c], activation)
                    }
                }
            }
        }
    }
    return out
}

/// dL/dz for z = (x − mean)·scale + shift and y = act(z), from dL/dy: z is recomputed exactly as
/// the forward pass computed it, so the result equals the unfused ops' gradient bit for bit.
private func activationGradient(_ dy: Tensor, x: Tensor, mean: Tensor, scale: [Float], shift: [Float],
                                activation: FusedActivation, into dz: Tensor) {
    let n = x.shape[0], c = x.shape[1], plane = x.count / Swift.max(n * c, 1)
    let gp = dy.basePointer, xp = x.basePointer, mp = mean.basePointer, dp = dz.basePointer
    scale.withUnsafeBufferPointer { sc in
        shift.withUnsafeBufferPointer { sh in
            Parallel.forEach(n * c, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
                let z = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(plane, 1))
                defer { z.deallocate() }
                for u in range {
                    // SiLU's in one pass on the AVX2 and AVX-512 paths (same bits as the two below).
                    if activation == .silu,
                       finch_affine_silu_backward(gp + u * plane, xp + u * plane, dp + u * plane, plane, mp[u % c],
                                                  sc[u % c], sh[u % c]) == 1 { continue }
                    Kernels.affineActivation(xp + u * plane, z, plane, mean: mp[u % c], scale: sc[u % c],
                                             shift: sh[u % c], .identity)
                    Kernels.activationBackward(gp + u * plane, z, dp + u * plane, plane, activation)
                }
            }
        }
    }
}

/// The per-plane passes of training-mode BatchNorm, in CFinchKernels on every path.
enum BatchNormKernels {
    /// Σ(a − sa) and Σ(a − sa)·(b − sb).
    @inline(__always)
    private static func centeredProducts(_ a: UnsafePointer<Float>, _ sa: Float, _ b: UnsafePointer<Float>, _ sb: Float,
                                         _ n: Int) -> (Float, Float) {
        var out: (Float, Float) = (0, 0)
        withUnsafeMutableBytes(of: &out) { finch_centered_products(a, sa, b, sb, n, $0.baseAddress!.assumingMemoryBound(to: Float.self)) }
        return out
    }

    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        centeredProducts(x, 0, x, 0, n).0
    }

    /// Σ(x − mean)².
    @inline(__always)
    static func sumSquaredDeviation(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        centeredProducts(x, mean, x, mean, n).1
    }

    /// Σg and Σg·(x − mean) over one plane.
    @inline(__always)
    static func sums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> (g: Float, gCentered: Float) {
        let (s, d) = centeredProducts(g, 0, x, mean, n)
        return (s, d)
    }

    /// dx = scale·(g − meanG − (x − mean)·k); dx may be g.
    @inline(__always)
    static func inputGradient(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int,
                              scale a: Float, meanG: Float, mean: Float, k: Float) {
        if k == 0 && meanG == 0 {
            for t in 0..<n { dx[t] = a * g[t] }
        } else {
            finch_batchnorm_input_gradient(g, x, dx, n, a, meanG, mean, k)
        }
    }
}

/// Layer normalisation, `torch.nn.functional.layer_norm`, over the trailing axes `normalizedShape`
/// with the biased variance; weight and bias (if given) have shape `normalizedShape`.
public func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let k = normalizedShape.count
    ensure(k >= 1 && x.rank >= k && Array(x.shape.suffix(k)) == normalizedShape,
                 "layerNorm: normalizedShape \(normalizedShape) is not the trailing shape of input \(x.shape)")
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let t {
            ensure(t.shape == normalizedShape,
                         "layerNorm: \(name) of shape \(t.shape) for normalizedShape \(normalizedShape)")
        }
    }
    let d = Shape.count(normalizedShape)
    let rows = d == 0 ? 0 : x.count / d
    let xd = x.isContiguous ? x.detach() : x.copy()
    let wd = weight.map { $0.isContiguous ? $0.detach() : $0.copy() }
    let bd = bias.map { $0.isContiguous ? $0.detach() : $0.copy() }
    let out = Tensor(uninitializedShape: x.shape)
    let mean = Tensor(uninitializedShape: [rows]), rstd = Tensor(uninitializedShape: [rows])
    let src = xd.basePointer, dst = out.basePointer, mp = mean.basePointer, rp = rstd.basePointer
    let wp = wd?.basePointer, bp = bd?.basePointer

    Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { range in
        for r in range {
            let s = src + r * d, o = dst + r * d
            let mu = ReduceKernels.sumContiguous(s, d) / Float(d)
            let rs = 1 / (VectorMath.sumSquaredDeviation(s, d, mean: mu) / Float(d) + eps).squareRoot()
            mp[r] = mu
            rp[r] = rs
            switch (wp, bp) {
            case let (w?, b?): for t in 0..<d { o[t] = (s[t] - mu) * rs * w[t] + b[t] }
            case let (w?, nil): for t in 0..<d { o[t] = (s[t] - mu) * rs * w[t] }
            case let (nil, b?): for t in 0..<d { o[t] = (s[t] - mu) * rs + b[t] }
            case (nil, nil): for t in 0..<d { o[t] = (s[t] - mu) * rs }
            }
        }
    }

    let needX = x.requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return record(out, "layer_norm", inputs, .layerNorm(normalizedRank: normalizedShape.count, epsilon: eps),
                  operands: [x, weight, bias]) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        let gp = dy.basePointer, xp = xd.basePointer, mp = mean.basePointer, rp = rstd.basePointer
        let wp = wd?.basePointer
        let dx = needX ? Tensor(uninitializedShape: xd.shape) : nil
        let dxp = dx?.basePointer
        // dγ and dβ sum over rows: each thread sums its own rows into a private partial, then
        // the partials are added, so the row loop needs no synchronisation.
        let parts = Swift.max(1, Swift.min(Parallel.threads, rows))
        let needParams = needW || needB
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: needParams ? 2 * parts * d : 1)
        defer { partial.deallocate() }
        if needParams { partial.initialize(repeating: 0, count: 2 * parts * d) }
        Parallel.forEach(parts) { partRange in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(d, 1))
            defer { scratch.deallocate() }
            for part in partRange {
                let pw = partial + part * d, pb = partial + (parts + part) * d
                for r in (rows * part / parts)..<(rows * (part + 1) / parts) {
                    let g = gp + r * d, s = xp + r * d, mu = mp[r], rs = rp[r]
                    if needParams {
                        for t in 0..<d {
                            pw[t] += g[t] * (s[t] - mu) * rs
                            pb[t] += g[t]
                        }
                    }
                    guard let dxp else { continue }
                    // With gγ = dy·γ and x̂ = (x − mean)·rstd: dx = rstd·(gγ − mean(gγ) − x̂·mean(gγ·x̂)).
                    let gw: UnsafePointer<Float>
                    if let wp {
                        for t in 0..<d { scratch[t] = g[t] * wp[t] }
                        gw = UnsafePointer(scratch)
                    } else {
                        gw = UnsafePointer(g)
                    }
                    let meanG = ReduceKernels.sumContiguous(gw, d) / Float(d)
                    let meanGX = VectorMath.dotCentered(gw, s, d, mean: mu) * rs / Float(d)
                    let o = dxp + r * d
                    for t in 0..<d { o[t] = rs * (gw[t] - meanG - (s[t] - mu) * rs * meanGX) }
                }
            }
        }
        var grads: [Tensor?] = [dx]
        if wd != nil || bd != nil {
            func reduced(_ base: Int) -> Tensor {
                let t = Tensor(zeros: normalizedShape)
                let tp = t.basePointer
                for part in 0..<parts {
                    let p = partial + (base + part) * d
                    for i in 0..<d { tp[i] += p[i] }
                }
                return t
            }
            if wd != nil { grads.append(needW ? reduced(0) : nil) }
            if bd != nil { grads.append(needB ? reduced(parts) : nil) }
        }
        return grads
    }
}
