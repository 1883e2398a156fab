import FinchTensor

/// `bn(conv(x))`, the convolution–BatchNorm(–activation) pair of every block in the zoo. In
/// evaluation with no gradient to compute and no trace recording, the BatchNorm is folded into the
/// convolution (`conv2dBatchNormInference`): one map instead of two. Otherwise the two modules run
/// as they are, so training, fine-tuning and ONNX export see the ops PyTorch has.
func convBatchNorm(_ conv: Conv2d, _ bn: BatchNorm2d, _ x: Tensor) -> Tensor {
    guard foldsInEvaluation(conv, bn, x), let fused = bn.activation.fused else { return bn(conv(x)) }
    return conv2dBatchNormInference(x, weight: conv.weight, bias: conv.bias, stride: conv.stride,
                                    padding: conv.padding2d(for: x), dilation: conv.dilation, groups: conv.groups,
                                    bnWeight: bn.weight, bnBias: bn.bias, runningMean: bn.runningMean,
                                    runningVar: bn.runningVar, eps: bn.eps, activation: fused)
}

/// `activation(bn(conv(x)) + residual)`, the end of a residual block. Folded like `convBatchNorm`
/// when it can be (and BatchNorm has no activation of its own), with the sum and the activation
/// applied by the convolution's kernels to each plane as it is finished; in training, BatchNorm
/// takes the sum and the activation into its own pass (`BatchNorm2d(_:adding:then:)`).
func convBatchNorm(_ conv: Conv2d, _ bn: BatchNorm2d, _ x: Tensor, adding residual: Tensor,
                   then activation: Activation.Kind) -> Tensor {
    let residualNeedsGradient = GradMode.isEnabled && residual.requiresGrad
    guard foldsInEvaluation(conv, bn, x), !residualNeedsGradient, bn.activation == .identity,
          let fused = activation.fused
    else { return bn(conv(x), adding: residual, then: activation) }
    return conv2dBatchNormInference(x, weight: conv.weight, bias: conv.bias, stride: conv.stride,
                                    padding: conv.padding2d(for: x), dilation: conv.dilation, groups: conv.groups,
                                    bnWeight: bn.weight, bnBias: bn.bias, runningMean: bn.runningMean,
                                    runningVar: bn.runningVar, eps: bn.eps, activation: fused, residual: residual)
}

/// Evaluation-mode BatchNorm, nothing to differentiate, nothing traced, a 4-D input.
private func foldsInEvaluation(_ conv: Conv2d, _ bn: BatchNorm2d, _ x: Tensor) -> Bool {
    let needsGradient = GradMode.isEnabled
        && (x.requiresGrad || conv.weight.requiresGrad || conv.bias?.requiresGrad == true
            || bn.weight.requiresGrad || bn.bias.requiresGrad)
    return !(bn.isTraining && !bn.usesRunningStatsAlways) && !needsGradient && !OpTrace.isTracing && x.rank == 4
}
