import FinchTensor

/// ResNet (He et al. 2016) as timm's `resnet18` / `resnet50`: 7×7/2 stem, 3×3/2 max pool, four
/// stages of basic (3×3, 3×3) or bottleneck (1×1, 3×3 with the stride, 1×1 ×4) blocks, global
/// pool, `fc`. Projection shortcuts (`downsample`: 1×1 conv + BN) where shape changes.
public final class ResNet: ImageClassifier, ModelFamily {
    public enum BlockKind: Sendable { case basic, bottleneck }

    /// (block, blocks per stage) — stage widths are 64, 128, 256, 512.
    static let configs: [String: (BlockKind, [Int])] = [
        "resnet18": (.basic, [2, 2, 2, 2]),
        "resnet50": (.bottleneck, [3, 4, 6, 3]),
    ]

    /// timm's fine-grained `group_matcher`: the stem (conv1, bn1, maxpool), then each block of
    /// layer1…layer4; fc comes last.
    public static let layerGroups = LayerGroupMatcher([.init(group: 0, #/^conv1|bn1|maxpool/#, "^conv1|bn1|maxpool"),
                                                       .init(group: 1, #/^layer(\d+)\.(\d+)/#, #"^layer(\d+)\.(\d+)"#)])

    public static let variants: [String: ModelRegistry.Builder] = Dictionary(uniqueKeysWithValues: configs.map { name, c in
        (name, { (o: ModelOptions) -> ImageClassifier in ResNet(name: name, block: c.0, layers: c.1, options: o) })
    })

    let conv1 = Conv2d(3, 64, kernelSize: 7, stride: 2, padding: .explicit(3, 3), bias: false)
    let bn1 = BatchNorm2d(64, activation: .relu)
    let stages: [Sequential]
    let dropRate: Float
    let features: Int
    private(set) var fc: Linear

    init(name: String, block: BlockKind, layers: [Int], options: ModelOptions) {
        let expansion = block == .basic ? 1 : 4
        let total = layers.reduce(0, +)
        var inC = 64, index = 0
        var built: [Sequential] = []
        for (s, count) in layers.enumerated() {
            let width = 64 << s
            var blocks: [Module] = []
            for b in 0..<count {
                let stride = (s > 0 && b == 0) ? 2 : 1
                let dp = total > 1 ? options.dropPathRate * Float(index) / Float(total - 1) : 0
                let unit: Module = block == .basic
                    ? BasicBlock(inC, width, stride: stride, dropPathRate: dp)
                    : Bottleneck(inC, width, stride: stride, dropPathRate: dp)
                blocks.append(unit)
                inC = width * expansion
                index += 1
            }
            built.append(Sequential(blocks))
        }
        stages = built
        features = inC
        fc = Linear(inC, options.numClasses)
        dropRate = options.dropRate
        super.init(modelName: name, numClasses: options.numClasses,
                   pretrainedConfig: PretrainedConfig(inputSize: 224, cropPct: 0.95, interpolation: "bicubic",
                                                      mean: PretrainedConfig.imagenet.mean, std: PretrainedConfig.imagenet.std))
        register("conv1", conv1)
        register("bn1", bn1)
        for (i, s) in stages.enumerated() { register("layer\(i + 1)", s) }
        register("fc", fc)
    }

    public override var classifierPrefixes: [String] { ["fc"] }

    public override func forwardFeatures(_ x: Tensor) -> Tensor {
        let stem = maxPool2d(convBatchNorm(conv1, bn1, x), kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        return stages.reduce(stem) { $1($0) }
    }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor {
        let pooled = adaptiveAvgPool2d(features, outputSize: (1, 1)).flattened(from: 1)
        if preLogits { return pooled }
        return fc(dropout(pooled, p: dropRate, training: isTraining, using: randomSource))
    }

    public override func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        fc = Linear(features, numClasses)
        fc.resetParameters(using: &rng)
        register("fc", fc)
        setNumClasses(numClasses)
    }

    /// timm: convs kaiming-normal (fan_out, ReLU), BatchNorm 1/0 with the last BN of each residual
    /// branch zeroed (`zero_init_last`), fc PyTorch's default.
    public override func initializeWeights(using rng: inout RandomGenerator) {
        for (_, m) in namedModules() {
            if let c = m as? Conv2d { Init.kaimingNormalFanOut(c.weight, using: &rng) }
            if let b = m as? BatchNorm2d { Init.constant(b.weight, 1); Init.constant(b.bias, 0) }
            if let b = m as? BasicBlock { Init.constant(b.bn2.weight, 0) }
            if let b = m as? Bottleneck { Init.constant(b.bn3.weight, 0) }
        }
        fc.resetParameters(using: &rng)
    }
}

/// Projection shortcut: 1×1 conv with the block's stride + BatchNorm (timm's `downsample`).
func resnetDownsample(_ inC: Int, _ outC: Int, stride: Int) -> Sequential? {
    guard stride != 1 || inC != outC else { return nil }
    return Sequential([Conv2d(inC, outC, kernelSize: 1, stride: stride, padding: .explicit(0, 0), bias: false), BatchNorm2d(outC)])
}

/// 3×3 → 3×3, residual added before the last ReLU.
final class BasicBlock: Module {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let downsample: Sequential?
    let dropPath: DropPath?

    init(_ inC: Int, _ width: Int, stride: Int, dropPathRate: Float) {
        conv1 = Conv2d(inC, width, kernelSize: 3, stride: stride, padding: .explicit(1, 1), bias: false)
        bn1 = BatchNorm2d(width, activation: .relu)
        conv2 = Conv2d(width, width, kernelSize: 3, padding: .explicit(1, 1), bias: false)
        bn2 = BatchNorm2d(width)
        downsample = resnetDownsample(inC, width, stride: stride)
        dropPath = dropPathRate > 0 ? DropPath(dropPathRate) : nil
        super.init()
        register("conv1", conv1)
        register("bn1", bn1)
        register("conv2", conv2)
        register("bn2", bn2)
        if let d = downsample { register("downsample", d) }
        if let d = dropPath { register("drop_path", d) }   // joins the model's training mode and seeded stream
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        let h = convBatchNorm(conv1, bn1, x)
        if !(dropPath?.isTraining ?? false) {
            // No stochastic depth to apply: the sum and the ReLU go to conv2's kernels (in evaluation).
            return convBatchNorm(conv2, bn2, h, adding: downsample.map { $0(x) } ?? x, then: .relu)
        }
        var y = convBatchNorm(conv2, bn2, h)
        if let dropPath { y = dropPath(y) }
        return (y + (downsample.map { $0(x) } ?? x)).relu()
    }
}

/// 1×1 reduce → 3×3 (with the stride) → 1×1 expand ×4, residual before the last ReLU.
final class Bottleneck: Module {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d
    let downsample: Sequential?
    let dropPath: DropPath?

    init(_ inC: Int, _ width: Int, stride: Int, dropPathRate: Float) {
        conv1 = Conv2d(inC, width, kernelSize: 1, padding: .explicit(0, 0), bias: false)
        bn1 = BatchNorm2d(width, activation: .relu)
        conv2 = Conv2d(width, width, kernelSize: 3, stride: stride, padding: .explicit(1, 1), bias: false)
        bn2 = BatchNorm2d(width, activation: .relu)
        conv3 = Conv2d(width, width * 4, kernelSize: 1, padding: .explicit(0, 0), bias: false)
        bn3 = BatchNorm2d(width * 4)
        downsample = resnetDownsample(inC, width * 4, stride: stride)
        dropPath = dropPathRate > 0 ? DropPath(dropPathRate) : nil
        super.init()
        register("conv1", conv1)
        register("bn1", bn1)
        register("conv2", conv2)
        register("bn2", bn2)
        register("conv3", conv3)
        register("bn3", bn3)
        if let d = downsample { register("downsample", d) }
        if let d = dropPath { register("drop_path", d) }   // joins the model's training mode and seeded stream
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        let h = convBatchNorm(conv2, bn2, convBatchNorm(conv1, bn1, x))
        if !(dropPath?.isTraining ?? false) {
            return convBatchNorm(conv3, bn3, h, adding: downsample.map { $0(x) } ?? x, then: .relu)
        }
        var y = convBatchNorm(conv3, bn3, h)
        if let dropPath { y = dropPath(y) }
        return (y + (downsample.map { $0(x) } ?? x)).relu()
    }
}
