import FinchTensor
/// Gradient accumulation over `steps` micro-batches: scale each micro-batch loss by 1/steps and
/// step the optimizer after the last one, so k batches of n equal one batch of k·n (for losses
/// that average over the batch and models without batch statistics).
public struct GradientAccumulation: Sendable {
    public let steps: Int
    public private(set) var position = 0

    public init(steps: Int) {
        ensure(steps >= 1, "gradient accumulation: steps must be ≥ 1, got \(steps)")
        self.steps = steps
    }

    public var lossScale: Float { 1 / Float(steps) }

    /// Records one micro-batch; true when the optimizer should step now.
    public mutating func microBatchDone() -> Bool {
        position += 1
        if position == steps {
            position = 0
            return true
        }
        return false
    }
}
