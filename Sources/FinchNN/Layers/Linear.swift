import FinchTensor

/// y = x·Wᵀ + b with W [out, in], as `torch.nn.Linear`. Accepts any leading batch axes.
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Tensor(zeros: [outFeatures, inFeatures])
        self.bias = bias ? Tensor(zeros: [outFeatures]) : nil
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(x, then: .identity) }

    /// activation(self(x)); in inference (nothing needs a gradient, nothing is traced) the
    /// activation joins the bias in `linearInference`'s pass over each block of rows.
    public func callAsFunction(_ x: Tensor, then activation: Activation.Kind) -> Tensor {
        ensure(x.shape.last == inFeatures, "Linear(\(inFeatures)→\(outFeatures)): input shape \(x.shape)")
        // Leading axes fold into one GEMM (and one weight-gradient GEMM in backward) instead of a
        // batch of small ones.
        let flat = x.rank > 2 ? x.reshaped([-1, inFeatures]) : x
        let needsGradient = GradMode.isEnabled && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
        var y: Tensor
        if let bias, !needsGradient, !OpTrace.isTracing, let fused = activation.fused {
            y = linearInference(flat, weight: weight, bias: bias, activation: fused)
        } else {
            y = flat.matmul(weight.transposed())
            if let bias { y = y + bias }
            y = Activation.apply(activation, y)
        }
        return x.rank > 2 ? y.reshaped(Array(x.shape.dropLast()) + [outFeatures]) : y
    }

    public func resetParameters(using rng: inout RandomGenerator) {
        Init.pytorchDefault(weight: weight, bias: bias, using: &rng)
    }
}
