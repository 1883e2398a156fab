/// Training-mode BatchNorm over a batch that several processes hold in parts (PyTorch's
/// `SyncBatchNorm`): `sum` adds a buffer of per-channel sums over every process, in place, and is
/// called in the same order on each (twice forward: Σx with the count, then Σ(x − mean)²; once
/// backward: Σdy and Σdy·(x − mean)). Mean and variance are those of the whole batch, and the
/// input gradient is the whole batch's, so N processes train as one; dγ and dβ stay this
/// process's part (the gradient reduction adds them). Statistics in Float64 with the same two
/// passes and kernels as `batchNorm2d`.
public func syncBatchNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
                            momentum: Float, eps: Float, sum: @escaping (UnsafeMutableBufferPointer<Double>) -> Void) -> Tensor {
    ensure(x.rank >= 2, "syncBatchNorm2d: input must be [N, C, *], got shape \(x.shape)")
    let n = x.shape[0], c = x.shape[1]
    let plane = Shape.count(Array(x.shape[2...]))
    for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
        ensure(t.shape == [c], "syncBatchNorm2d: \(name) of shape \(t.shape) for input \(x.shape) (expected [\(c)])")
    }
    ensure(runningMean.isContiguous && runningVar.isContiguous, "syncBatchNorm2d: running statistics must be contiguous")
    let xd = x.isContiguous ? x.detach() : x.copy()
    let wd = weight.isContiguous ? weight.detach() : weight.copy()
    let bd = bias.isContiguous ? bias.detach() : bias.copy()
    let src = xd.basePointer

    var first = [Double](repeating: 0, count: c + 1)
    for ch in 0..<c {
        for i in 0..<n { first[ch] += Double(BatchNormKernels.sum(src + (i * c + ch) * plane, plane)) }
    }
    first[c] = Double(n * plane)
    first.withUnsafeMutableBufferPointer { sum($0) }
    let m = first[c]
    ensure(m > 1, "syncBatchNorm2d: expected more than 1 value per channel over all processes, got \(m)")
    let mean = Tensor(uninitializedShape: [c]), invstd = Tensor(uninitializedShape: [c])
    let mp = mean.basePointer, ip = invstd.basePointer
    for ch in 0..<c { mp[ch] = Float(first[ch] / m) }
    var second = [Double](repeating: 0, count: c)
    for ch in 0..<c {
        for i in 0..<n { second[ch] += Double(BatchNormKernels.sumSquaredDeviation(src + (i * c + ch) * plane, plane, mean: mp[ch])) }
    }
    second.withUnsafeMutableBufferPointer { sum($0) }
    let rm = runningMean.basePointer, rv = runningVar.basePointer
    for ch in 0..<c {
        let variance = second[ch] / m
        ip[ch] = Float(1 / (variance + Double(eps)).squareRoot())
        rm[ch] = (1 - momentum) * rm[ch] + momentum * mp[ch]
        rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(variance * m / (m - 1))
    }

    let out = Tensor(uninitializedShape: x.shape)
    let dst = out.basePointer
    for u in 0..<(n * c) {
        let ch = u % c
        Kernels.affineActivation(src + u * plane, dst + u * plane, plane, mean: mp[ch], scale: wd.basePointer[ch] * ip[ch],
                                 shift: bd.basePointer[ch], .identity)
    }
    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias.requiresGrad
    return record(out, "sync_batch_norm", [x, weight, bias], nil) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        // The statistics' tensors, not pointers taken in forward: the closure keeps them alive.
        let gp = dy.basePointer, xp = xd.basePointer, mp = mean.basePointer, ip = invstd.basePointer
        // This process's Σdy and Σdy·(x − mean), then the whole batch's.
        var sums = [Double](repeating: 0, count: 2 * c)
        for ch in 0..<c {
            for i in 0..<n {
                let off = (i * c + ch) * plane
                let s = BatchNormKernels.sums(gp + off, xp + off, plane, mean: mp[ch])
                sums[ch] += Double(s.g)
                sums[c + ch] += Double(s.gCentered)
            }
        }
        let db = needB ? Tensor(Array(sums[0..<c]).map { Float($0) }, shape: [c]) : nil
        let dw = needW ? Tensor((0..<c).map { Float(sums[c + $0]) * ip[$0] }, shape: [c]) : nil
        sums.withUnsafeMutableBufferPointer { sum($0) }
        var dx: Tensor? = nil
        if needX {
            let d = Tensor(uninitializedShape: xd.shape)
            for ch in 0..<c {
                let istd = ip[ch]
                let meanDy = Float(sums[ch] / m), k = Float(sums[c + ch] / m) * istd * istd
                for i in 0..<n {
                    let off = (i * c + ch) * plane
                    BatchNormKernels.inputGradient(gp + off, xp + off, d.basePointer + off, plane, scale: wd.basePointer[ch] * istd,
                                                   meanG: meanDy, mean: mp[ch], k: k)
                }
            }
            dx = d
        }
        return [dx, dw, db]
    }
}
