/// Evaluation-mode convolution followed by BatchNorm and its activation, unrecorded, with the
/// BatchNorm folded into the convolution: W′[co] = W[co]·s[co] and b′[co] = (b[co] − μ[co])·s[co] + β[co],
/// s = γ/√(σ² + ε), with b′ and the activation applied by the convolution's kernels. With a
/// `residual` (the output's shape) the result is activation(BatchNorm(conv(x)) + residual): the
/// end of a residual block, where BatchNorm itself has no activation.
///
/// The unfused pair reads the convolution's map once more and writes a second one; on
/// MobileNetV3-Small and MobileViT-XXS that pass was 15–17% of an evaluation forward, most of it
/// memory traffic. Folding changes the rounding (the scale multiplies the weights, not the sum):
/// results agree with the unfused ops to a few units in the last place. For inference only — no
/// gradient, no trace.
public func conv2dBatchNormInference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int),
                                     padding: Padding2d, dilation: (Int, Int), groups: Int,
                                     bnWeight: Tensor?, bnBias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                                     eps: Float, activation: FusedActivation, residual: Tensor? = nil) -> Tensor {
    let cout = weight.shape[0]
    precondition(runningMean.shape == [cout] && runningVar.shape == [cout],
                 "conv2dBatchNormInference: running statistics of shape \(runningMean.shape) for weight \(weight.shape)")
    let w = weight.contiguous(), rm = runningMean.contiguous(), rv = runningVar.contiguous()
    let gamma = bnWeight?.contiguous(), beta = bnBias?.contiguous(), b = bias?.contiguous()
    let perFilter = w.count / Swift.max(cout, 1)
    let folded = Tensor(uninitializedShape: weight.shape), foldedBias = Tensor(uninitializedShape: [cout])
    let src = w.basePointer, dst = folded.basePointer, fb = foldedBias.basePointer
    for co in 0..<cout {
        let s = (gamma?.basePointer[co] ?? 1) / (rv.basePointer[co] + eps).squareRoot()
        for k in 0..<perFilter { dst[co * perFilter + k] = src[co * perFilter + k] * s }
        fb[co] = ((b?.basePointer[co] ?? 0) - rm.basePointer[co]) * s + (beta?.basePointer[co] ?? 0)
    }
    // The folded bias and the activation go to the convolution's kernels, which apply them to each
    // plane or sample as they finish it, while it is still in cache.
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding,
                         dilation: dilation, groups: groups, op: "conv2dBatchNormInference")
    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [g.n, g.cout, g.ho, g.wo])
    if let residual {
        precondition(residual.shape == out.shape,
                     "conv2dBatchNormInference: residual of shape \(residual.shape) for an output of shape \(out.shape)")
    }
    let rd = residual.map { $0.isContiguous ? $0.detach() : $0.copy() }
    withExtendedLifetime((xd, folded, foldedBias, rd)) {
        ConvKernels.forward(x: xd.basePointer, weight: folded.basePointer, bias: fb, out: out.basePointer, g,
                            activation: activation, residual: rd.map { UnsafePointer($0.basePointer) })
    }
    return out
}
