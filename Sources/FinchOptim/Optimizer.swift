import FinchTensor

/// Common surface of Finch's optimizers: groups, one update, and the state that lets a run
/// continue exactly (torch's `state_dict()` / `load_state_dict()`).
public protocol Optimizer: AnyObject {
    var groups: [ParamGroup] { get }
    /// Applies one update to every parameter that has a gradient.
    func step()
    /// Every parameter's state by the parameter's name, plus the hyper-parameters. Tensors are
    /// the live ones, not copies: write them out or load them elsewhere before the next step.
    func stateDict() -> OptimizerStateDict
    /// Replaces the state of the named parameters (others keep theirs). Everything is checked
    /// before anything changes: a name outside the groups, a missing or unexpected entry, a wrong
    /// shape or a negative counter throws and leaves the optimizer as it was.
    func load(stateDict: OptimizerStateDict) throws
    /// How messages name one of its state tensors ("AdamW exp_avg_sq", "SGD momentum buffer").
    func describeState(_ key: String) -> String
}

extension Optimizer {
    public func describeState(_ key: String) -> String { "\(type(of: self)) \(key)" }

    /// Drops gradients of every parameter (`set_to_none=True`, torch's default).
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.tensor.grad = nil } }
    }

    /// The groups' parameters by name (the first occurrence when a name repeats).
    public var parametersByName: [String: Tensor] {
        Dictionary(groups.flatMap { $0.parameters }.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// Takes over `other`'s state for the parameters this optimizer trains too, after the groups
    /// were rebuilt (gradual unfreezing): state follows the parameter's name, not its group.
    public func carryState(from other: Optimizer) throws {
        let names = Set(groups.flatMap { $0.parameters.map(\.name) })
        var sd = other.stateDict()
        sd.parameters.removeAll { !names.contains($0.name) }
        // Nothing to carry (a first build, or only frozen parameters had state) is no type clash.
        guard !sd.parameters.isEmpty else { return }
        try load(stateDict: sd)
    }
}

/// An optimizer's state in named pieces, the way checkpoints store it:
/// `type` and `hyperparameters` become attributes of `/optimizer`, each parameter's counters
/// attributes of `/optimizer/state/<name>` and its tensors datasets inside it.
public struct OptimizerStateDict {
    /// The kind as checkpoints name it ("adamw", "sgd"); nil when a file did not record it.
    public var type: String?
    /// For the record (torch keeps them in `param_groups`); loading takes the optimizer's own.
    public var hyperparameters: [(key: String, value: OptimizerScalar)]
    /// In group order; parameters that have no state yet are absent.
    public var parameters: [(name: String, state: ParameterState)]

    public init(type: String?, hyperparameters: [(key: String, value: OptimizerScalar)] = [],
                parameters: [(name: String, state: ParameterState)] = []) {
        self.type = type
        self.hyperparameters = hyperparameters
        self.parameters = parameters
    }
}

/// One parameter's state: tensors shaped like the parameter (moments, momentum) and integer
/// counters (AdamW's per-parameter step).
public struct ParameterState {
    public var tensors: [(key: String, tensor: Tensor)]
    public var counters: [(key: String, value: Int64)]

    public init(tensors: [(key: String, tensor: Tensor)], counters: [(key: String, value: Int64)] = []) {
        self.tensors = tensors
        self.counters = counters
    }

    public func tensor(_ key: String) -> Tensor? { tensors.first { $0.key == key }?.tensor }
    public func counter(_ key: String) -> Int64? { counters.first { $0.key == key }?.value }
}

public enum OptimizerScalar: Equatable {
    case int64(Int64)
    case double(Double)
    case doubles([Double])
}

/// Why a state dict does not fit an optimizer. `parameter` and `key` name the entry, so a
/// checkpoint reader can point at its own path for it.
public enum OptimizerStateError: Error, CustomStringConvertible, Equatable {
    case wrongType(expected: String, found: String)
    case unknownParameter(String)
    case missingEntry(parameter: String, key: String)
    case unexpectedEntry(parameter: String, key: String)
    case shapeMismatch(parameter: String, key: String, shape: [Int], expected: [Int])
    case invalidCounter(parameter: String, key: String, value: Int64)

    public var description: String {
        switch self {
        case .wrongType(let e, let f): return "optimizer state is for \(f), the optimizer is \(e)"
        case .unknownParameter(let p): return "optimizer state for \(p), which is in none of the optimizer's groups"
        case .missingEntry(let p, let k): return "optimizer state of \(p) has no \(k)"
        case .unexpectedEntry(let p, let k): return "optimizer state of \(p) has an unexpected entry \(k)"
        case .shapeMismatch(let p, let k, let s, let e): return "\(k) of \(p) has shape \(s), the parameter \(e)"
        case .invalidCounter(let p, let k, let v): return "\(k) of \(p) is \(v), expected a count ≥ 0"
        }
    }
}

extension OptimizerStateDict {
    /// The checks every optimizer makes: the type (when recorded), every name in the groups,
    /// the required entries present, nothing unknown, tensors shaped like their parameter and
    /// counters not negative. Returns each entry with its parameter.
    func validated(for optimizer: Optimizer, type expected: String, tensors required: [String],
                   optionalTensors: [String] = [], counters: [String] = []) throws
        -> [(parameter: Tensor, state: ParameterState)] {
        if let t = type, t != expected { throw OptimizerStateError.wrongType(expected: expected, found: t) }
        let byName = optimizer.parametersByName
        return try parameters.map { name, s in
            guard let p = byName[name] else { throw OptimizerStateError.unknownParameter(name) }
            for k in required where s.tensor(k) == nil { throw OptimizerStateError.missingEntry(parameter: name, key: k) }
            for k in counters where s.counter(k) == nil { throw OptimizerStateError.missingEntry(parameter: name, key: k) }
            for (k, t) in s.tensors {
                guard required.contains(k) || optionalTensors.contains(k) else {
                    throw OptimizerStateError.unexpectedEntry(parameter: name, key: k)
                }
                guard t.shape == p.shape else {
                    throw OptimizerStateError.shapeMismatch(parameter: name, key: k, shape: t.shape, expected: p.shape)
                }
            }
            for (k, v) in s.counters {
                guard counters.contains(k) else { throw OptimizerStateError.unexpectedEntry(parameter: name, key: k) }
                guard v >= 0 else { throw OptimizerStateError.invalidCounter(parameter: name, key: k, value: v) }
            }
            return (p, s)
        }
    }
}
