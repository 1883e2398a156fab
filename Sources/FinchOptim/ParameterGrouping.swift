import FinchTensor
import FinchNN

/// How to split a model's trainable parameters into optimizer groups, as timm's
/// `param_groups_weight_decay` / `param_groups_layer_decay`, plus explicit per-prefix rates.
public struct ParameterGroupingOptions: Sendable {
    /// A learning rate or multiplier for every parameter under a name prefix (longest prefix wins).
    public enum Rate: Sendable, Equatable {
        case lr(Float)
        case multiplier(Float)
    }

    public var lr: Float
    public var weightDecay: Float
    /// timm: parameters with ndim ≤ 1 (biases, norm scales) get no weight decay.
    public var excludeOneDimensionalFromDecay: Bool
    /// Extra names (or prefixes) without weight decay, e.g. position embeddings.
    public var noWeightDecay: [String]
    /// timm `layer_decay`: scale = max(decay^(L−1−layer), minScale).
    public var layerDecay: Float?
    public var minScale: Float
    public var prefixRates: [(prefix: String, rate: Rate)]

    public init(lr: Float, weightDecay: Float = 0, excludeOneDimensionalFromDecay: Bool = true,
                noWeightDecay: [String] = [], layerDecay: Float? = nil, minScale: Float = 0,
                prefixRates: [(prefix: String, rate: Rate)] = []) {
        self.lr = lr
        self.weightDecay = weightDecay
        self.excludeOneDimensionalFromDecay = excludeOneDimensionalFromDecay
        self.noWeightDecay = noWeightDecay
        self.layerDecay = layerDecay
        self.minScale = minScale
        self.prefixRates = prefixRates
    }
}

public enum ParameterGrouping {
    /// Groups of the model's trainable parameters (frozen ones are in no group and cost no
    /// optimizer state). Group names follow timm: `layer_<id>_decay`, `layer_<id>_no_decay`,
    /// with `:<prefix>` appended for explicit prefix rates.
    public static func groups(for model: Module, modelName: String? = nil,
                              options o: ParameterGroupingOptions) -> [ParamGroup] {
        let named = model.namedParameters().filter { $0.tensor.requiresGrad }
        var layerId: [String: Int] = [:]
        var layers = 1
        if o.layerDecay != nil {
            // The model declares its layers; a name picks a zoo architecture's declaration instead
            // (for modules that only carry its parameter names).
            let matcher = if let modelName { ModelRegistry.groupMatcher(for: modelName) } else { (model as? ImageClassifier)?.groupMatcher }
            if let matcher {
                // timm numbers layers over all parameters, frozen or not, so ids do not shift when freezing.
                let all = matcher.layerIds(model.namedParameters().map(\.name))
                layerId = all.ids
                layers = all.count
            }
        }
        var order: [String] = []
        var byName: [String: ParamGroup] = [:]
        for (name, p) in named {
            let noDecay = (o.excludeOneDimensionalFromDecay && p.rank <= 1) || Module.matches(name, prefixes: o.noWeightDecay)
            let lid = layerId[name] ?? (layers - 1)
            var scale: Float = 1
            if let d = o.layerDecay { scale = Swift.max(o.minScale, Float(pow(Double(d), Double(layers - 1 - lid)))) }
            var lr = o.lr
            var suffix = ""
            if let rule = o.prefixRates.filter({ Module.matches(name, prefixes: [$0.prefix]) })
                .max(by: { $0.prefix.count < $1.prefix.count }) {
                suffix = ":" + rule.prefix
                switch rule.rate {
                case .lr(let v): lr = v; scale = 1
                case .multiplier(let m): scale *= m
                }
            }
            let gname = (o.layerDecay != nil ? "layer_\(lid)_" : "") + (noDecay ? "no_decay" : "decay") + suffix
            if let g = byName[gname] {
                g.append(name: name, tensor: p)
            } else {
                let g = ParamGroup(name: gname, parameters: [(name, p)], lr: lr * scale,
                                   weightDecay: noDecay ? 0 : o.weightDecay, lrScale: scale)
                g.initialLR = lr
                byName[gname] = g
                order.append(gname)
            }
        }
        return order.map { byName[$0]! }
    }

    /// A table users can read to see what they configured.
    public static func describe(_ groups: [ParamGroup]) -> String {
        var lines = ["group                          tensors     params   base lr   lr scale  weight decay"]
        for g in groups {
            let n = g.parameters.reduce(0) { $0 + $1.tensor.count }
            lines.append(pad(g.name, 30) + pad(String(g.parameters.count), 8, left: true) + pad(String(n), 11, left: true)
                         + pad(short(g.initialLR), 10, left: true) + pad(short(g.lrScale), 11, left: true)
                         + pad(short(g.weightDecay), 14, left: true))
        }
        return lines.joined(separator: "\n")
    }

    private static func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
        s.count >= n ? s + " " : (left ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
    }

    private static func short(_ x: Float) -> String {
        if x == 0 { return "0" }
        if Swift.abs(x) >= 0.01 && Swift.abs(x) < 1000 { return String(Double(x).rounded(toPlaces: 4)) }
        return String(x)
    }
}

extension ParamGroup {
    func append(name: String, tensor: Tensor) { appendParameter(name: name, tensor: tensor) }
}

extension Double {
    func rounded(toPlaces n: Int) -> Double {
        let p = (0..<n).reduce(1.0) { r, _ in r * 10 }
        return (self * p).rounded() / p
    }
}

#if canImport(Glibc)
import Glibc
#endif
