import FinchTensor

/// `torch.optim.SGD`: coupled weight decay (g ← g + wd·p), momentum with dampening
/// (the buffer starts as the first gradient, undampened), optional Nesterov.
public final class SGD: Optimizer {
    public let groups: [ParamGroup]
    public var momentum: Float
    public var dampening: Float
    public var nesterov: Bool
    public private(set) var momentumBuffers: [ObjectIdentifier: Tensor] = [:]

    public init(groups: [ParamGroup], momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false) {
        ensure(!nesterov || (momentum > 0 && dampening == 0),
                     "SGD: Nesterov momentum requires a momentum and zero dampening")
        self.groups = groups
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
    }

    public convenience init(parameters: [(name: String, tensor: Tensor)], lr: Float, momentum: Float = 0,
                            dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        self.init(groups: [ParamGroup(parameters: parameters, lr: lr, weightDecay: weightDecay)],
                  momentum: momentum, dampening: dampening, nesterov: nesterov)
    }

    public func momentumBuffer(for parameter: Tensor) -> Tensor? { momentumBuffers[ObjectIdentifier(parameter)] }

    /// Restores one parameter's momentum buffer (checkpoint resume).
    public func restoreMomentumBuffer(for parameter: Tensor, _ buffer: Tensor) {
        ensure(buffer.shape == parameter.shape, "SGD: momentum buffer \(buffer.shape) for parameter \(parameter.shape)")
        momentumBuffers[ObjectIdentifier(parameter)] = buffer.copy()
    }

    public func stateDict() -> OptimizerStateDict {
        var entries: [(name: String, state: ParameterState)] = []
        for g in groups {
            for (name, p) in g.parameters {
                guard let b = momentumBuffer(for: p) else { continue }
                entries.append((name, ParameterState(tensors: [("momentum_buffer", b)])))
            }
        }
        return OptimizerStateDict(type: "sgd",
                                  hyperparameters: [("momentum", .double(Double(momentum))), ("dampening", .double(Double(dampening))),
                                                    ("nesterov", .int64(nesterov ? 1 : 0))],
                                  parameters: entries)
    }

    public func load(stateDict sd: OptimizerStateDict) throws {
        for (p, s) in try sd.validated(for: self, type: "sgd", tensors: ["momentum_buffer"]) {
            restoreMomentumBuffer(for: p, s.tensor("momentum_buffer")!)
        }
    }

    public func describeState(_ key: String) -> String { key == "momentum_buffer" ? "SGD momentum buffer" : "SGD \(key)" }

    public func step() {
        for group in groups {
            let lr = group.lr, wd = group.weightDecay
            for (_, p) in group.parameters {
                guard let g = p.grad else { continue }
                let gc = g.isContiguous ? g : g.copy()
                let pp = p.basePointer, gp = gc.basePointer, n = p.count
                let key = ObjectIdentifier(p)
                if momentum == 0 {
                    for i in 0..<n { pp[i] += -lr * (gp[i] + wd * pp[i]) }
                    continue
                }
                let fresh = momentumBuffers[key] == nil
                let buf = momentumBuffers[key] ?? Tensor(zeros: p.shape)
                momentumBuffers[key] = buf
                let bp = buf.basePointer
                let mu = momentum, keep = 1 - dampening, nest = nesterov
                for i in 0..<n {
                    let d = wd != 0 ? gp[i] + wd * pp[i] : gp[i]
                    bp[i] = fresh ? d : bp[i] * mu + keep * d
                    let update = nest ? d + mu * bp[i] : bp[i]
                    pp[i] += -lr * update
                }
            }
        }
    }
}
