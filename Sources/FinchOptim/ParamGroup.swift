import FinchTensor

/// A set of parameters sharing hyper-parameters (torch's `param_groups` entry). Names are the
/// model's state-dict names, so groups, checkpoints and printed tables speak the same language.
public final class ParamGroup {
    public var name: String
    public private(set) var parameters: [(name: String, tensor: Tensor)]
    /// Learning rate in effect for the next step (schedules write it).
    public var lr: Float
    /// The group's base learning rate before any schedule (its layer-wise rate).
    public var initialLR: Float
    /// Multiplier a schedule applies on top of (layer decay); lr = schedule(t) × lrScale.
    public var lrScale: Float
    public var weightDecay: Float

    public init(name: String = "default", parameters: [(name: String, tensor: Tensor)], lr: Float,
                weightDecay: Float = 0, lrScale: Float = 1) {
        self.name = name
        self.parameters = parameters
        self.lr = lr
        self.initialLR = lr
        self.lrScale = lrScale
        self.weightDecay = weightDecay
    }

    public func appendParameter(name: String, tensor: Tensor) {
        parameters.append((name, tensor))
    }
}
