import FinchTensor

/// `torch.nn.LayerNorm` over the trailing `normalizedShape` axes.
public final class LayerNorm: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let normalizedShape: [Int]
    public let eps: Float

    public init(_ normalizedShape: [Int], eps: Float = 1e-5) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = Tensor(repeating: 1, shape: normalizedShape)
        bias = Tensor(zeros: normalizedShape)
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
    }

    public convenience init(_ features: Int, eps: Float = 1e-5) { self.init([features], eps: eps) }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
    }
}
