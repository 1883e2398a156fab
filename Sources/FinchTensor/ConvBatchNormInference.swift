/// Evaluation-mode convolution followed by BatchNorm and its activation, unrecorded, with the
/// BatchNorm folded into the convolution: W′[co] = W[co]·s[co] and b′[co] = (b[co] − μ[co])·s[co] + β[co],
/// s = γ/√(σ² + ε), then b′ and the activation in place on the convolution's output.
///
/// The unfused pair reads the convolution's map once more and writes a second one; on
/// MobileNetV3-Small and MobileViT-XXS that pass was 15–17% of an evaluation forward, most of it
/// memory traffic. Folding changes the rounding (the scale multiplies the weights, not the sum):
/// results agree with the unfused ops to a few units in the last place. For inference only — no
/// gradient, no trace.
public func conv2dBatchNormInference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int),
                                     padding: Padding2d, dilation: (Int, Int), groups: Int,
                                     bnWeight: Tensor?, bnBias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                                     eps: Float, activation: FusedActivation) -> Tensor {
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
    // The folded bias joins the activation's pass (x + b′ is (x − 0)·1 + b′ exactly, in the same
    // AVX-512 kernel as evaluation BatchNorm), rather than a pass of its own before the GEMMs.
    let out = noGrad {
        conv2d(x.detach(), weight: folded, bias: nil, stride: stride, padding: padding, dilation: dilation,
               groups: groups)
    }
    let p = out.basePointer, plane = out.count / Swift.max(out.shape[0] * cout, 1)
    Parallel.forEach(out.shape[0] * cout, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
        for u in range {
            Kernels.affineActivation(p + u * plane, p + u * plane, plane, mean: 0, scale: 1, shift: fb[u % cout],
                                     activation)
        }
    }
    return out
}
