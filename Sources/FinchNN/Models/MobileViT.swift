import FinchTensor

/// MobileViT (Mehta & Rastegari 2022) as timm's `mobilevit_xxs` / `_xs` / `_s` (a `ByobNet`):
///
/// | stage | block                              | xxs (c, d, mlp dim) | xs            | s             |
/// |-------|------------------------------------|---------------------|---------------|---------------|
/// | stem  | 3×3/2 conv-BN-SiLU                 | 16                  | 16            | 16            |
/// | 0     | inverted residual, s1              | 16 ×1               | 32 ×1         | 32 ×1         |
/// | 1     | inverted residual, s2              | 24 ×3               | 48 ×3         | 64 ×3         |
/// | 2     | inverted residual s2 + MobileViT   | 48, dim 64, L2      | 64, 96, L2    | 96, 144, L2   |
/// | 3     | inverted residual s2 + MobileViT   | 64, dim 80, L4      | 80, 120, L4   | 128, 192, L4  |
/// | 4     | inverted residual s2 + MobileViT   | 80, dim 96, L3      | 96, 144, L3   | 160, 240, L3  |
/// | head  | 1×1 conv-BN-SiLU, avg pool, fc     | 320                 | 384           | 640           |
///
/// Inverted residuals expand ×2 (xxs) or ×4 (xs, s); transformers use 4 heads, MLP ratio 2,
/// SiLU, 2×2 patches.
public final class MobileViT: ImageClassifier, ModelFamily {
    struct Config {
        var channels: [Int]           // per stage
        var depths: [Int]             // inverted residuals per stage
        var transformerDims: [Int]    // stages 2…4
        var transformerDepths: [Int]  // stages 2…4
        var expansion: Float
        var numFeatures: Int
    }

    static let configs: [String: Config] = [
        "mobilevit_xxs": Config(channels: [16, 24, 48, 64, 80], depths: [1, 3, 1, 1, 1], transformerDims: [64, 80, 96],
                                transformerDepths: [2, 4, 3], expansion: 2, numFeatures: 320),
        "mobilevit_xs": Config(channels: [32, 48, 64, 80, 96], depths: [1, 3, 1, 1, 1], transformerDims: [96, 120, 144],
                               transformerDepths: [2, 4, 3], expansion: 4, numFeatures: 384),
        "mobilevit_s": Config(channels: [32, 64, 96, 128, 160], depths: [1, 3, 1, 1, 1], transformerDims: [144, 192, 240],
                              transformerDepths: [2, 4, 3], expansion: 4, numFeatures: 640),
    ]

    /// timm's fine-grained `group_matcher`: the stem, each block of each stage, and final_conv merged
    /// into the last block's layer; the head comes last.
    public static let layerGroups = LayerGroupMatcher([.init(group: 0, #/^stem/#, "^stem"),
                                                       .init(group: 1, #/^stages\.(\d+)\.(\d+)/#, #"^stages\.(\d+)\.(\d+)"#),
                                                       .init(group: 1, #/^final_conv/#, "^final_conv", mergeWithPrevious: true)])

    public static let variants: [String: ModelRegistry.Builder] = Dictionary(uniqueKeysWithValues: configs.map { name, c in
        (name, { (o: ModelOptions) -> ImageClassifier in MobileViT(name: name, config: c, options: o) })
    })

    let stem: ConvNormAct
    let stages: [Sequential]
    let finalConv: ConvNormAct
    let head: Module
    private(set) var fc: Linear
    let dropRate: Float
    let numFeatures: Int

    init(name: String, config c: Config, options: ModelOptions) {
        stem = ConvNormAct(3, 16, kernelSize: 3, stride: 2)
        // Stochastic depth rises linearly over every block of the network (ByobNet's rule).
        let stageDepths = (0..<5).map { c.depths[$0] + ($0 >= 2 ? 1 : 0) }
        let total = stageDepths.reduce(0, +)
        var index = 0
        func nextDropPath() -> Float {
            defer { index += 1 }
            return total > 1 ? options.dropPathRate * Float(index) / Float(total - 1) : 0
        }
        var inC = 16
        var built: [Sequential] = []
        for s in 0..<5 {
            var blocks: [Module] = []
            for b in 0..<c.depths[s] {
                blocks.append(InvertedBottleneck(inC, c.channels[s], stride: (s > 0 && b == 0) ? 2 : 1,
                                                 expansion: c.expansion, dropPathRate: nextDropPath()))
                inC = c.channels[s]
            }
            if s >= 2 {
                blocks.append(MobileViTBlock(inC, transformerDim: c.transformerDims[s - 2],
                                             depth: c.transformerDepths[s - 2], dropPathRate: nextDropPath()))
            }
            built.append(Sequential(blocks))
        }
        stages = built
        numFeatures = c.numFeatures
        finalConv = ConvNormAct(inC, c.numFeatures, kernelSize: 1)
        head = Module()
        fc = Linear(c.numFeatures, options.numClasses)
        dropRate = options.dropRate
        super.init(modelName: name, numClasses: options.numClasses,
                   pretrainedConfig: PretrainedConfig(inputSize: 256, cropPct: 0.9, interpolation: "bicubic",
                                                      mean: [0, 0, 0], std: [1, 1, 1]))
        register("stem", stem)
        register("stages", Sequential(stages))
        register("final_conv", finalConv)
        head.register("fc", fc)
        register("head", head)
    }

    public override var classifierPrefixes: [String] { ["head.fc"] }

    public override func forwardFeatures(_ x: Tensor) -> Tensor {
        finalConv(stages.reduce(stem(x)) { $1($0) })
    }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor {
        let pooled = adaptiveAvgPool2d(features, outputSize: (1, 1)).flattened(from: 1)
        if preLogits { return pooled }
        return fc(dropout(pooled, p: dropRate, training: isTraining, using: randomSource))
    }

    public override func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        fc = Linear(numFeatures, numClasses)
        Init.normal(fc.weight, std: 0.01, using: &rng)
        Init.constant(fc.bias!, 0)
        head.register("fc", fc)
        setNumClasses(numClasses)
    }

    /// timm's ByobNet `_init_weights`: convs N(0, √(2/fan_out)) with fan_out per group, linears
    /// N(0, 0.01) with zero bias, BatchNorm 1/0, LayerNorm 1/0, and the last BN of each residual
    /// inverted bottleneck zeroed (`zero_init_last`).
    public override func initializeWeights(using rng: inout RandomGenerator) {
        for (_, m) in namedModules() {
            if let c = m as? Conv2d {
                Init.normal(c.weight, std: (2 / Float(c.kernelSize.0 * c.kernelSize.1 * c.outChannels / c.groups)).squareRoot(),
                            using: &rng)
                if let b = c.bias { Init.constant(b, 0) }
            }
            if let l = m as? Linear {
                Init.normal(l.weight, std: 0.01, using: &rng)
                if let b = l.bias { Init.constant(b, 0) }
            }
            if let b = m as? BatchNorm2d { Init.constant(b.weight, 1); Init.constant(b.bias, 0) }
            if let n = m as? LayerNorm { Init.constant(n.weight, 1); Init.constant(n.bias, 0) }
            if let b = m as? InvertedBottleneck, b.hasShortcut { Init.constant(b.conv3.bn.weight, 0) }
        }
    }
}

/// Conv → BatchNorm → activation under timm's names `conv` and `bn` (its `ConvNormAct`).
final class ConvNormAct: Module {
    let conv: Conv2d
    let bn: BatchNorm2d

    init(_ inC: Int, _ outC: Int, kernelSize: Int, stride: Int = 1, groups: Int = 1, activation: Activation.Kind = .silu) {
        conv = Conv2d(inC, outC, kernelSize: kernelSize, stride: stride, groups: groups, bias: false)
        bn = BatchNorm2d(outC, activation: activation)
        super.init()
        register("conv", conv)
        register("bn", bn)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor { convBatchNorm(conv, bn, x) }

    /// self(x) + residual, which in evaluation the convolution adds as it writes each plane.
    func callAsFunction(_ x: Tensor, adding residual: Tensor) -> Tensor {
        convBatchNorm(conv, bn, x, adding: residual, then: .identity)
    }
}

/// ByobNet's `BottleneckBlock` with `bottle_in` and `linear_out` — MobileNetV2's inverted residual:
/// 1×1 expand → 3×3 depthwise (with the stride) → 1×1 linear project, identity shortcut when the
/// shape is kept and none otherwise.
final class InvertedBottleneck: Module {
    let conv1: ConvNormAct, conv2: ConvNormAct, conv3: ConvNormAct
    let hasShortcut: Bool
    let dropPath: DropPath?

    init(_ inC: Int, _ outC: Int, stride: Int, expansion: Float, dropPathRate: Float) {
        let mid = makeDivisible(Double(inC) * Double(expansion))
        conv1 = ConvNormAct(inC, mid, kernelSize: 1)
        conv2 = ConvNormAct(mid, mid, kernelSize: 3, stride: stride, groups: mid)
        conv3 = ConvNormAct(mid, outC, kernelSize: 1, activation: .identity)
        hasShortcut = inC == outC && stride == 1
        dropPath = dropPathRate > 0 ? DropPath(dropPathRate) : nil
        super.init()
        register("conv1_1x1", conv1)
        register("conv2_kxk", conv2)
        register("conv3_1x1", conv3)
        if let d = dropPath { register("drop_path", d) }
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        let h = conv2(conv1(x))
        if hasShortcut && !(dropPath?.isTraining ?? false) { return conv3(h, adding: x) }
        var y = conv3(h)
        if let dropPath { y = dropPath(y) }
        return hasShortcut ? y + x : y
    }
}

/// The MobileViT block: local 3×3 conv and 1×1 projection to the transformer width, unfold into
/// 2×2 patches (tokens = patch positions, one sequence per pixel offset inside a patch),
/// transformer layers, fold back, 1×1 projection, then fuse with the input by a 3×3 conv.
final class MobileViTBlock: Module {
    let convKxK: ConvNormAct
    let conv1x1: Conv2d
    let transformer: [TransformerBlock]
    let norm: LayerNorm
    let convProj: ConvNormAct
    let convFusion: ConvNormAct
    let patch = 2

    init(_ channels: Int, transformerDim dim: Int, depth: Int, dropPathRate: Float) {
        convKxK = ConvNormAct(channels, channels, kernelSize: 3)
        conv1x1 = Conv2d(channels, dim, kernelSize: 1, bias: false)
        transformer = (0..<depth).map { _ in
            TransformerBlock(dim, numHeads: 4, mlpRatio: 2, qkvBias: true, dropPath: dropPathRate, activation: .silu)
        }
        norm = LayerNorm(dim)
        convProj = ConvNormAct(dim, channels, kernelSize: 1)
        convFusion = ConvNormAct(2 * channels, channels, kernelSize: 3)
        super.init()
        register("conv_kxk", convKxK)
        register("conv_1x1", conv1x1)
        register("transformer", Sequential(transformer))
        register("norm", norm)
        register("conv_proj", convProj)
        register("conv_fusion", convFusion)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv1x1(convKxK(x))
        let (b, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        // Feature maps that are not a multiple of the patch size are resized to one and back (timm).
        let ph = (h + patch - 1) / patch * patch, pw = (w + patch - 1) / patch * patch
        if ph != h || pw != w { y = interpolateBilinear(y, size: (ph, pw)) }
        let nh = ph / patch, nw = pw / patch
        // [B, C, nh, p, nw, p] → [B, p, p, nh, nw, C] → [B·p², N, C]
        var tokens = y.reshaped([b, c, nh, patch, nw, patch]).permuted(0, 3, 5, 2, 4, 1)
            .reshaped([b * patch * patch, nh * nw, c])
        tokens = norm(transformer.reduce(tokens) { $1($0) })
        y = tokens.reshaped([b, patch, patch, nh, nw, c]).permuted(0, 5, 3, 1, 4, 2).reshaped([b, c, ph, pw])
        if ph != h || pw != w { y = interpolateBilinear(y, size: (h, w)) }
        return convFusion(Tensor.concat([x, convProj(y)], axis: 1))
    }
}
