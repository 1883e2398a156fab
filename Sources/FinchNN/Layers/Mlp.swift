import FinchTensor

/// Transformer feed-forward, timm's `Mlp`: fc1 → activation → dropout → fc2 → dropout.
public final class Mlp: Module {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation.Kind
    let drop1: Dropout, drop2: Dropout

    public init(_ inFeatures: Int, hidden: Int, out: Int? = nil, activation: Activation.Kind = .gelu, drop: Float = 0) {
        fc1 = Linear(inFeatures, hidden)
        fc2 = Linear(hidden, out ?? inFeatures)
        self.activation = activation
        drop1 = Dropout(drop)
        drop2 = Dropout(drop)
        super.init()
        register("fc1", fc1)
        register("drop1", drop1)
        register("fc2", fc2)
        register("drop2", drop2)
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        drop2(fc2(drop1(fc1(x, then: activation))))
    }
}
