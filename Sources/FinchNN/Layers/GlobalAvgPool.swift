import FinchTensor

/// Global average pooling over H and W (timm's `SelectAdaptivePool2d(pool_type="avg")`),
/// [N,C,H,W] → [N,C] when flattening, else [N,C,1,1].
public final class GlobalAvgPool: Module {
    public let flatten: Bool

    public init(flatten: Bool = true) {
        self.flatten = flatten
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        let y = adaptiveAvgPool2d(x, outputSize: (1, 1))
        return flatten ? y.flattened(from: 1) : y
    }
}
