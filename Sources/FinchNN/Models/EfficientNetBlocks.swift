import FinchTensor

// Building blocks shared by timm's efficientnet family (MobileNetV3, EfficientNet-Lite): the
// block types of its architecture strings (ds, ir, cn), squeeze-excite, channel rounding and
// depth scaling, and the "goog" initialisation.

/// One row of a stage table: a block type repeated `repeats` times (the first with `stride`).
public struct BlockSpec: Sendable {
    public enum Kind: Sendable { case depthwiseSeparable, invertedResidual, convBnAct }
    public let kind: Kind
    public let repeats: Int
    public let kernel: Int
    public let stride: Int
    public let expansion: Double
    public let outChannels: Int
    public let seRatio: Double?
    /// Per-block activation override (timm's "_nre" = ReLU); nil: the model's default.
    public let activation: Activation.Kind?

    public static func ds(r: Int = 1, k: Int, s: Int, c: Int, se: Double? = nil, act: Activation.Kind? = nil) -> BlockSpec {
        BlockSpec(kind: .depthwiseSeparable, repeats: r, kernel: k, stride: s, expansion: 1, outChannels: c, seRatio: se, activation: act)
    }
    public static func ir(r: Int, k: Int, s: Int, e: Double, c: Int, se: Double? = nil, act: Activation.Kind? = nil) -> BlockSpec {
        BlockSpec(kind: .invertedResidual, repeats: r, kernel: k, stride: s, expansion: e, outChannels: c, seRatio: se, activation: act)
    }
    public static func cn(r: Int = 1, k: Int, s: Int, c: Int, act: Activation.Kind? = nil) -> BlockSpec {
        BlockSpec(kind: .convBnAct, repeats: r, kernel: k, stride: s, expansion: 1, outChannels: c, seRatio: nil, activation: act)
    }
}

/// timm's `make_divisible`: nearest multiple of `divisor`, never below `divisor` nor 10% below `v`.
public func makeDivisible(_ v: Double, divisor: Int = 8, roundLimit: Double = 0.9) -> Int {
    var n = max(divisor, Int(v + Double(divisor) / 2) / divisor * divisor)
    if Double(n) < roundLimit * v { n += divisor }
    return n
}

/// timm's `round_channels`: scales by the width multiplier, then `makeDivisible`.
public func roundChannels(_ c: Int, multiplier: Double) -> Int {
    multiplier == 1 ? makeDivisible(Double(c)) : makeDivisible(Double(c) * multiplier)
}

/// Settings every block of a model shares.
struct EfficientNetStyle {
    var activation: Activation.Kind
    var bnEps: Float
    /// TensorFlow "SAME" padding (the `tf_` ports); otherwise timm's symmetric padding.
    var tfSame: Bool
    /// Squeeze-excite gate and whether its reduction counts from the expanded channels.
    var seGate: Activation.Kind
    var seFromExpanded: Bool

    func conv(_ i: Int, _ o: Int, k: Int, s: Int = 1, groups: Int = 1, bias: Bool = false) -> Conv2d {
        Conv2d(i, o, kernelSize: k, stride: s, padding: tfSame ? .same : nil, groups: groups, bias: bias)
    }

    func bn(_ c: Int, _ act: Activation.Kind = .identity) -> BatchNorm2d { BatchNorm2d(c, eps: bnEps, activation: act) }
}

/// timm's efficientnet `SqueezeExcite`: global mean → 1×1 reduce → act → 1×1 expand → gate, times x.
public final class SqueezeExcite: Module {
    let convReduce: Conv2d
    let act: Activation.Kind
    let convExpand: Conv2d
    let gate: Activation.Kind

    init(channels: Int, reduced: Int, act: Activation.Kind, gate: Activation.Kind) {
        convReduce = Conv2d(channels, reduced, kernelSize: 1)
        convExpand = Conv2d(reduced, channels, kernelSize: 1)
        self.act = act
        self.gate = gate
        super.init()
        register("conv_reduce", convReduce)
        register("conv_expand", convExpand)
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        let s = x.mean(axes: [2, 3], keepDim: true)
        return x * Activation.apply(gate, convExpand(Activation.apply(act, convReduce(s))))
    }
}

/// A block with an optional residual through stochastic depth.
class ResidualBlock: Module {
    let hasSkip: Bool
    let dropPath: DropPath?

    init(hasSkip: Bool, dropPathRate: Float) {
        self.hasSkip = hasSkip
        dropPath = hasSkip && dropPathRate > 0 ? DropPath(dropPathRate) : nil
        super.init()
        // A child, so it draws from the model's seeded stream (saved in checkpoints, and shared
        // across ranks by RandomSource.batchShare) rather than a stream of its own at seed 0.
        if let dropPath { register("drop_path", dropPath) }
    }

    func residual(_ y: Tensor, _ x: Tensor) -> Tensor {
        guard hasSkip else { return y }
        return (dropPath.map { $0(y) } ?? y) + x
    }
}

/// ds: depthwise k×k → BN+act → [SE] → pointwise 1×1 → BN (timm `DepthwiseSeparableConv`).
final class DepthwiseSeparableConv: ResidualBlock {
    let convDw: Conv2d, bn1: BatchNorm2d, se: SqueezeExcite?, convPw: Conv2d, bn2: BatchNorm2d

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int, se: Double?, act: Activation.Kind, style: EfficientNetStyle, dropPathRate: Float) {
        convDw = style.conv(inC, inC, k: kernel, s: stride, groups: inC)
        bn1 = style.bn(inC, act)
        self.se = se.map { SqueezeExcite(channels: inC, reduced: makeDivisible(Double(inC) * $0), act: .relu, gate: style.seGate) }
        convPw = style.conv(inC, outC, k: 1)
        bn2 = style.bn(outC)
        super.init(hasSkip: stride == 1 && inC == outC, dropPathRate: dropPathRate)
        register("conv_dw", convDw)
        register("bn1", bn1)
        if let s = self.se { register("se", s) }
        register("conv_pw", convPw)
        register("bn2", bn2)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = convBatchNorm(convDw, bn1, x)
        if let se { y = se(y) }
        return residual(convBatchNorm(convPw, bn2, y), x)
    }
}

/// ir: pointwise expand → BN+act → depthwise k×k → BN+act → [SE] → pointwise project → BN
/// (timm `InvertedResidual`).
final class InvertedResidual: ResidualBlock {
    let convPw: Conv2d, bn1: BatchNorm2d, convDw: Conv2d, bn2: BatchNorm2d, se: SqueezeExcite?, convPwl: Conv2d, bn3: BatchNorm2d

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int, expansion: Double, se: Double?, act: Activation.Kind,
         style: EfficientNetStyle, dropPathRate: Float) {
        let mid = makeDivisible(Double(inC) * expansion)
        convPw = style.conv(inC, mid, k: 1)
        bn1 = style.bn(mid, act)
        convDw = style.conv(mid, mid, k: kernel, s: stride, groups: mid)
        bn2 = style.bn(mid, act)
        self.se = se.map { ratio in
            let base = style.seFromExpanded ? Double(mid) : Double(inC)
            return SqueezeExcite(channels: mid, reduced: makeDivisible(base * ratio), act: .relu, gate: style.seGate)
        }
        convPwl = style.conv(mid, outC, k: 1)
        bn3 = style.bn(outC)
        super.init(hasSkip: stride == 1 && inC == outC, dropPathRate: dropPathRate)
        register("conv_pw", convPw)
        register("bn1", bn1)
        register("conv_dw", convDw)
        register("bn2", bn2)
        if let s = self.se { register("se", s) }
        register("conv_pwl", convPwl)
        register("bn3", bn3)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = convBatchNorm(convDw, bn2, convBatchNorm(convPw, bn1, x))
        if let se { y = se(y) }
        return residual(convBatchNorm(convPwl, bn3, y), x)
    }
}

/// cn: conv → BN+act (timm `ConvBnAct`, no residual in these models).
final class ConvBnAct: ResidualBlock {
    let conv: Conv2d, bn1: BatchNorm2d

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int, act: Activation.Kind, style: EfficientNetStyle) {
        conv = style.conv(inC, outC, k: kernel, s: stride)
        bn1 = style.bn(outC, act)
        super.init(hasSkip: false, dropPathRate: 0)
        register("conv", conv)
        register("bn1", bn1)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor { convBatchNorm(conv, bn1, x) }
}

/// Builds `blocks` (a Sequential of stage Sequentials, timm's `blocks.<stage>.<block>` names).
/// Returns the stages and the output channel count.
func buildStages(_ stages: [[BlockSpec]], inChannels: Int, style: EfficientNetStyle,
                 roundChannels round: (Int) -> Int, dropPathRate: Float) -> (Sequential, Int) {
    let total = stages.flatMap { $0 }.reduce(0) { $0 + $1.repeats }
    var index = 0
    var c = inChannels
    let blocks = Sequential(stages.map { stage in
        var layers: [Module] = []
        for spec in stage {
            let out = round(spec.outChannels)
            for r in 0..<spec.repeats {
                let stride = r == 0 ? spec.stride : 1
                let act = spec.activation ?? style.activation
                let dp = dropPathRate * Float(index) / Float(total)
                switch spec.kind {
                case .depthwiseSeparable:
                    layers.append(DepthwiseSeparableConv(c, out, kernel: spec.kernel, stride: stride, se: spec.seRatio, act: act, style: style, dropPathRate: dp))
                case .invertedResidual:
                    layers.append(InvertedResidual(c, out, kernel: spec.kernel, stride: stride, expansion: spec.expansion, se: spec.seRatio,
                                                   act: act, style: style, dropPathRate: dp))
                case .convBnAct:
                    layers.append(ConvBnAct(c, out, kernel: spec.kernel, stride: stride, act: act, style: style))
                }
                c = out
                index += 1
            }
        }
        return Sequential(layers)
    })
    return (blocks, c)
}

/// timm's `_scale_stage_depth` with ceil truncation, for stages of one block row each.
func scaleDepth(_ stages: [[BlockSpec]], multiplier: Double, fixFirstLast: Bool) -> [[BlockSpec]] {
    stages.enumerated().map { i, stage in
        if fixFirstLast && (i == 0 || i == stages.count - 1) { return stage }
        return stage.map { s in
            BlockSpec(kind: s.kind, repeats: Int((Double(s.repeats) * multiplier).rounded(.up)), kernel: s.kernel, stride: s.stride,
                      expansion: s.expansion, outChannels: s.outChannels, seRatio: s.seRatio, activation: s.activation)
        }
    }
}

/// timm's `_init_weight_goog`: conv N(0, √(2/fan_out)) with fan_out = k·k·out/groups, conv biases 0,
/// BatchNorm 1/0, Linear U(±1/√out_features) with bias 0.
func initGoog(_ model: Module, using rng: inout RandomGenerator) {
    for (_, m) in model.namedModules() {
        switch m {
        case let c as Conv2d:
            let fanOut = c.kernelSize.0 * c.kernelSize.1 * c.outChannels / c.groups
            Init.normal(c.weight, std: (2 / Float(fanOut)).squareRoot(), using: &rng)
            if let b = c.bias { Init.constant(b, 0) }
        case let b as BatchNorm2d:
            Init.constant(b.weight, 1)
            Init.constant(b.bias, 0)
        case let l as Linear:
            let r = 1 / Float(l.outFeatures).squareRoot()
            Init.uniform(l.weight, -r, r, using: &rng)
            if let b = l.bias { Init.constant(b, 0) }
        default:
            break
        }
    }
}
