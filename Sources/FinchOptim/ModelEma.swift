import FinchTensor
import FinchNN

/// Exponential moving average of a model's weights as timm's `ModelEmaV3`: every float entry of
/// the state dict (parameters and buffers) is lerped toward the model's with weight 1 − decay;
/// integer buffers are copied. Decay warmup: 1 − (1 + s/γ)^−power clamped to [minDecay, decay].
public final class ModelEma {
    public var decay: Double
    public var minDecay: Double
    public var updateAfterStep: Int
    public var useWarmup: Bool
    public var warmupGamma: Double
    public var warmupPower: Double
    /// The averaged state, in the model's state-dict order.
    public private(set) var entries: [(name: String, value: StateValue)]

    public init(model: Module, decay: Double = 0.9999, minDecay: Double = 0, updateAfterStep: Int = 0,
                useWarmup: Bool = false, warmupGamma: Double = 1, warmupPower: Double = 2.0 / 3.0) {
        self.decay = decay
        self.minDecay = minDecay
        self.updateAfterStep = updateAfterStep
        self.useWarmup = useWarmup
        self.warmupGamma = warmupGamma
        self.warmupPower = warmupPower
        entries = model.stateDict().map { name, value in
            switch value {
            case .float(let t): return (name, .float(t.copy()))
            case .int64: return (name, value)
            }
        }
    }

    /// timm's `get_decay(step)`; nil step means the fixed decay.
    public func decay(at step: Int?) -> Double {
        guard let step else { return decay }
        let s = max(0, step - updateAfterStep - 1)
        if s <= 0 { return 0 }
        guard useWarmup else { return decay }
        let d = 1 - pow(1 + Double(s) / warmupGamma, -warmupPower)
        return max(min(d, decay), minDecay)
    }

    public func update(from model: Module, step: Int? = nil) {
        let weight = Float(1 - decay(at: step))
        let current = model.stateDict()
        ensure(current.count == entries.count, "ModelEma: the model's state dict changed shape")
        for i in entries.indices {
            switch (entries[i].value, current[i].value) {
            case (.float(let e), .float(let m)):
                let ep = e.basePointer
                m.withContiguousBuffer { mp in
                    for k in 0..<e.count { ep[k] += weight * (mp[k] - ep[k]) }
                }
            case (_, .int64):
                entries[i] = (entries[i].name, current[i].value)
            default:
                ensureFailed("ModelEma: entry \(entries[i].name) changed type")
            }
        }
    }

    /// Loads the averaged weights into `model` (e.g. a second instance used for evaluation).
    public func copy(into model: Module) throws {
        try model.load(stateDict: Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.value) }))
    }

    /// Replaces the averaged state (checkpoint restore).
    public func restore(_ state: [String: StateValue]) throws {
        for i in entries.indices {
            guard let v = state[entries[i].name] else {
                throw StateDictError(missing: [entries[i].name], unexpected: [], mismatched: [], source: "EMA")
            }
            switch (entries[i].value, v) {
            case (.float(let e), .float(let s)) where e.shape == s.shape: e.assign(s)
            case (.int64, .int64): entries[i] = (entries[i].name, v)
            default:
                throw StateDictError(missing: [], unexpected: [], mismatched: [.init(name: entries[i].name, expected: entries[i].value.shape, found: v.shape)], source: "EMA")
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
