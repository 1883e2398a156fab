import FinchTensor

/// EfficientNet-Lite as timm's `tf_efficientnet_lite0…4` (ports of the TensorFlow weights):
/// TF "SAME" padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excite; the stem (32) and head
/// (1280) keep their width, the first and last stages their depth.
public final class EfficientNetLite: ImageClassifier, ModelFamily {
    /// The B0 stage table; width and depth multipliers scale it per variant.
    static let base: [[BlockSpec]] = [
        [.ds(k: 3, s: 1, c: 16)],
        [.ir(r: 2, k: 3, s: 2, e: 6, c: 24)],
        [.ir(r: 2, k: 5, s: 2, e: 6, c: 40)],
        [.ir(r: 3, k: 3, s: 2, e: 6, c: 80)],
        [.ir(r: 3, k: 5, s: 1, e: 6, c: 112)],
        [.ir(r: 4, k: 5, s: 2, e: 6, c: 192)],
        [.ir(r: 1, k: 3, s: 1, e: 6, c: 320)],
    ]

    /// (width, depth, pretrained input size, crop_pct, interpolation) per variant, from timm.
    static let scaling: [(String, Double, Double, Int, Float, String)] = [
        ("tf_efficientnet_lite0", 1.0, 1.0, 224, 0.875, "bicubic"),
        ("tf_efficientnet_lite1", 1.0, 1.1, 240, 0.882, "bicubic"),
        ("tf_efficientnet_lite2", 1.1, 1.2, 260, 0.890, "bicubic"),
        ("tf_efficientnet_lite3", 1.2, 1.4, 300, 0.904, "bilinear"),
        ("tf_efficientnet_lite4", 1.4, 1.8, 380, 0.920, "bilinear"),
    ]

    /// timm's fine-grained `group_matcher`: the stem, each block in stage order, and conv_head / bn2
    /// merged into the last block's layer; the classifier comes last.
    public static let layerGroups = LayerGroupMatcher([.init(group: 0, #/^conv_stem|bn1/#, "^conv_stem|bn1"),
                                                       .init(group: 1, #/^blocks\.(\d+)\.(\d+)/#, #"^blocks\.(\d+)\.(\d+)"#),
                                                       .init(group: 1, #/conv_head|bn2/#, "conv_head|bn2", mergeWithPrevious: true)])

    public static let variants: [String: ModelRegistry.Builder] = Dictionary(uniqueKeysWithValues: scaling.map { s in
        (s.0, { (o: ModelOptions) -> ImageClassifier in
            EfficientNetLite(name: s.0, width: s.1, depth: s.2,
                             pretrained: PretrainedConfig(inputSize: s.3, cropPct: s.4, interpolation: s.5, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]),
                             options: o)
        })
    })

    let convStem: Conv2d
    let bn1: BatchNorm2d
    let blocks: Sequential
    let convHead: Conv2d
    let bn2: BatchNorm2d
    let dropRate: Float
    private(set) var classifier: Linear

    init(name: String, width: Double, depth: Double, pretrained: PretrainedConfig, options: ModelOptions) {
        let style = EfficientNetStyle(activation: .relu6, bnEps: 1e-3, tfSame: true, seGate: .sigmoid, seFromExpanded: false)
        convStem = style.conv(3, 32, k: 3, s: 2)
        bn1 = style.bn(32, .relu6)
        let (b, c) = buildStages(scaleDepth(Self.base, multiplier: depth, fixFirstLast: true), inChannels: 32, style: style,
                                 roundChannels: { roundChannels($0, multiplier: width) }, dropPathRate: options.dropPathRate)
        blocks = b
        convHead = style.conv(c, 1280, k: 1)
        bn2 = style.bn(1280, .relu6)
        classifier = Linear(1280, options.numClasses)
        dropRate = options.dropRate
        super.init(modelName: name, numClasses: options.numClasses, pretrainedConfig: pretrained)
        register("conv_stem", convStem)
        register("bn1", bn1)
        register("blocks", blocks)
        register("conv_head", convHead)
        register("bn2", bn2)
        register("classifier", classifier)
    }

    public override func forwardFeatures(_ x: Tensor) -> Tensor { convBatchNorm(convHead, bn2, blocks(convBatchNorm(convStem, bn1, x))) }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor {
        let pooled = adaptiveAvgPool2d(features, outputSize: (1, 1)).flattened(from: 1)
        if preLogits { return pooled }
        return classifier(dropout(pooled, p: dropRate, training: isTraining, using: randomSource))
    }

    public override func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        classifier = Linear(1280, numClasses)
        initGoog(classifier, using: &rng)
        register("classifier", classifier)
        setNumClasses(numClasses)
    }

    public override func initializeWeights(using rng: inout RandomGenerator) { initGoog(self, using: &rng) }
}
