/// Evaluation-mode convolution followed by BatchNorm and its activation, unrecorded, with
/// BatchNorm, (y − μ)·s + β with s = γ/√(σ² + ε), and the activation applied by the convolution's
/// kernels to each plane or sample as they finish it. With a `residual` (the output's shape) the
/// result is activation(BatchNorm(conv(x)) + residual): the end of a residual block, where
/// BatchNorm itself has no activation.
///
/// The unfused pair reads the convolution's map back from memory and writes a second one; on
/// MobileNetV3-Small and MobileViT-XXS that pass was 15–17% of an evaluation forward, most of it
/// memory traffic. The arithmetic is BatchNorm's own per value; results agree with the unfused ops
/// to a few units in the last place (their kernels may order the affine terms differently). For
/// inference only — no gradient, no trace.
public func conv2dBatchNormInference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int),
                                     padding: Padding2d, dilation: (Int, Int), groups: Int,
                                     bnWeight: Tensor?, bnBias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                                     eps: Float, activation: FusedActivation, residual: Tensor? = nil) -> Tensor {
    let cout = weight.shape[0]
    ensure(runningMean.shape == [cout] && runningVar.shape == [cout],
                 "conv2dBatchNormInference: running statistics of shape \(runningMean.shape) for weight \(weight.shape)")
    let rm = runningMean.contiguous(), rv = runningVar.contiguous()
    let gamma = bnWeight?.contiguous(), beta = bnBias?.contiguous()
    // y = (conv(x) + b − μ)·s + β, BatchNorm's own formula, applied by the kernels' epilogue to each
    // plane as it is finished; the weights are used as they are (folding s into them read and
    // wrote every weight on each call: 2% of a ResNet18 evaluation).
    let scale = Tensor(uninitializedShape: [cout]), shift = Tensor(uninitializedShape: [cout])
    for co in 0..<cout {
        scale.basePointer[co] = (gamma?.basePointer[co] ?? 1) / (rv.basePointer[co] + eps).squareRoot()
        shift.basePointer[co] = beta?.basePointer[co] ?? 0
    }
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding,
                         dilation: dilation, groups: groups, op: "conv2dBatchNormInference")
    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [g.n, g.cout, g.ho, g.wo])
    if let residual {
        ensure(residual.shape == out.shape,
                     "conv2dBatchNormInference: residual of shape \(residual.shape) for an output of shape \(out.shape)")
    }
    let rd = residual.map { $0.isContiguous ? $0.detach() : $0.copy() }
    let wd = weight.isContiguous ? weight.detach() : weight.copy(), bd = bias.map { $0.contiguous() }
    withExtendedLifetime((xd, wd, bd, rd, rm, scale, shift)) {
        ConvKernels.forward(x: xd.basePointer, weight: wd.basePointer, bias: bd?.basePointer, out: out.basePointer, g,
                            activation: activation, residual: rd.map { UnsafePointer($0.basePointer) },
                            mean: rm.basePointer, scale: scale.basePointer, shift: shift.basePointer)
    }
    return out
}
