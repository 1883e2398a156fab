import FinchTensor

/// Parameter-free activation as a module, so model files can name it like timm does.
public final class Activation: Module {
    public enum Kind: String, Sendable, CaseIterable {
        case identity, relu, relu6, hardswish, hardsigmoid, silu, gelu, geluTanh = "gelu_tanh", sigmoid, tanh
    }

    public let kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor { Activation.apply(kind, x) }

    public static func apply(_ kind: Kind, _ x: Tensor) -> Tensor {
        switch kind {
        case .identity: return x
        case .relu: return x.relu()
        case .relu6: return x.relu6()
        case .hardswish: return x.hardswish()
        case .hardsigmoid: return x.hardsigmoid()
        case .silu: return x.silu()
        case .gelu: return x.gelu()
        case .geluTanh: return x.gelu(approximate: .tanh)
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        }
    }
}

/// Passes its input through (timm uses it for disabled parts, e.g. `se`, `drop_path`).
public final class Identity: Module {
    public override init() { super.init() }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x }
}

extension Activation.Kind {
    /// The same activation as a fused inference kernel, when FinchTensor has one.
    var fused: FusedActivation? {
        switch self {
        case .identity: return .identity
        case .relu: return .relu
        case .relu6: return .relu6
        case .hardswish: return .hardswish
        case .hardsigmoid: return .hardsigmoid
        case .silu: return .silu
        case .sigmoid: return .sigmoid
        case .gelu, .geluTanh, .tanh: return nil
        }
    }
}
