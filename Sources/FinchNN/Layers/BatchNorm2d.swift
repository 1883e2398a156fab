import FinchTensor

/// `torch.nn.BatchNorm2d`: batch statistics in training (biased variance to normalise,
/// unbiased into `running_var`, momentum 0.1), running statistics in eval.
/// An optional activation makes it timm's `BatchNormAct2d` (same state-dict names).
public final class BatchNorm2d: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let numBatchesTracked = Int64Buffer([0])
    public let eps: Float
    public let momentum: Float
    public var activation: Activation.Kind
    /// Frozen BatchNorm (fine-tuning's `freeze_bn`): always normalises with running statistics.
    public var usesRunningStatsAlways = false
    /// Set in a data-parallel run with `sync_bn` (FinchTrain/Distributed): adds per-channel sums
    /// over every process, so training normalises with the statistics of the whole global batch.
    public var statisticsReducer: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    /// Called with each forward's input (`finch compare --gates` recomputes the pre-activation
    /// from it, exactly as the backward does, to see which side of a ReLU kink Finch lands on).
    public var inputObserver: ((Tensor) -> Void)?

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, activation: Activation.Kind = .identity) {
        weight = Tensor(repeating: 1, shape: [channels])
        bias = Tensor(zeros: [channels])
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
        self.eps = eps
        self.momentum = momentum
        self.activation = activation
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
        registerBuffer("running_mean", runningMean)
        registerBuffer("running_var", runningVar)
        registerBuffer("num_batches_tracked", numBatchesTracked)
    }

    /// Whether a forward normalises with the batch's statistics (training, and not frozen).
    private var normalisesWithBatch: Bool { isTraining && !usesRunningStatsAlways }

    /// What every forward does first: shows the input to its observer and counts a training batch.
    private func begin(_ x: Tensor, training: Bool) {
        inputObserver?(x)
        if training { numBatchesTracked.values[0] += 1 }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        let training = normalisesWithBatch
        begin(x, training: training)
        if training, let statisticsReducer, !OpTrace.isTracing {
            let y = syncBatchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                    momentum: momentum, eps: eps, sum: statisticsReducer)
            return Activation.apply(activation, y)
        }
        // Inference: normalisation and activation in one pass over the map (no gradient needed, not traced).
        if !training, !OpTrace.isTracing, let fused = activation.fused,
           !GradMode.isEnabled || !(x.requiresGrad || weight.requiresGrad || bias.requiresGrad) {
            return batchNormActivationInference(x, weight: weight, bias: bias, runningMean: runningMean,
                                                runningVar: runningVar, eps: eps, activation: fused)
        }
        // Training: one recorded op that keeps only x for backward (the ONNX tracer needs the two ops apart).
        if !OpTrace.isTracing, let fused = activation.fused {
            return batchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                               training: training, momentum: momentum, eps: eps, activation: fused)
        }
        let y = batchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                            training: training, momentum: momentum, eps: eps)
        return Activation.apply(activation, y)
    }

    /// `after(self(x) + residual)`, the end of a residual block, as one recorded op where one exists
    /// (this BatchNorm with no activation of its own, a sum of one shape, ReLU or none after it, not
    /// traced, not synchronised across processes): the same values and gradients as the three ops.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor, then after: Activation.Kind) -> Tensor {
        let training = normalisesWithBatch
        guard activation == .identity, residual.shape == x.shape, x.rank == 4, !OpTrace.isTracing,
              !(training && statisticsReducer != nil), let fused = after.fused, fused == .identity || fused == .relu
        else { return Activation.apply(after, self(x) + residual) }
        begin(x, training: training)
        return batchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: training, momentum: momentum, eps: eps, adding: residual, then: fused)
    }
}
