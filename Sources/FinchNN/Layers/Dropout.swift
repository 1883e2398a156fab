import FinchTensor

/// Element-wise dropout (`torch.nn.Dropout`), active only in training.
public final class Dropout: Module {
    public var p: Float

    public init(_ p: Float) {
        ensure(p >= 0 && p <= 1, "Dropout: probability \(p) is not in [0, 1]")
        self.p = p
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        dropout(x, p: p, training: isTraining, using: randomSource)
    }
}

/// Stochastic depth (timm's `DropPath`): drops a residual branch for whole samples with
/// probability `p`, scaling kept samples by 1/(1−p).
public final class DropPath: Module {
    public var p: Float
    public var scaleByKeep = true

    public init(_ p: Float) {
        ensure(p >= 0 && p < 1, "DropPath: probability \(p) is not in [0, 1)")
        self.p = p
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining && p > 0 else { return x }
        let keep = 1 - p
        var maskShape = [Int](repeating: 1, count: x.rank)
        maskShape[0] = x.shape[0]
        let mask = randomSource.bernoulliMask(maskShape, probability: keep)
        return x * (scaleByKeep ? mask / keep : mask)
    }
}
