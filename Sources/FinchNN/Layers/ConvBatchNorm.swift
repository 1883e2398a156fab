import FinchTensor

/// `bn(conv(x))`, the convolution–BatchNorm(–activation) pair of every block in the zoo. In
/// evaluation with no gradient to compute and no trace recording, the BatchNorm is folded into the
/// convolution (`conv2dBatchNormInference`): one map instead of two. Otherwise the two modules run
/// as they are, so training, fine-tuning and ONNX export see the ops PyTorch has.
func convBatchNorm(_ conv: Conv2d, _ bn: BatchNorm2d, _ x: Tensor) -> Tensor {
    let needsGradient = GradMode.isEnabled
        && (x.requiresGrad || conv.weight.requiresGrad || conv.bias?.requiresGrad == true
            || bn.weight.requiresGrad || bn.bias.requiresGrad)
    guard !(bn.isTraining && !bn.usesRunningStatsAlways), !needsGradient, !OpTrace.isTracing,
          x.rank == 4, let fused = bn.activation.fused
    else { return bn(conv(x)) }
    return conv2dBatchNormInference(x, weight: conv.weight, bias: conv.bias, stride: conv.stride,
                                    padding: conv.padding2d(for: x), dilation: conv.dilation, groups: conv.groups,
                                    bnWeight: bn.weight, bnBias: bn.bias, runningMean: bn.runningMean,
                                    runningVar: bn.runningVar, eps: bn.eps, activation: fused)
}
