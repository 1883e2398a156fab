import FinchTensor

/// MobileNetV3 (Howard et al. 2019) as timm's `mobilenetv3_*_100`: stem 3×3/2 16 → blocks →
/// global pool → 1×1 conv head with bias → hard-swish → classifier. SE gates are hard-sigmoid
/// with ReLU inside and reduce from the expanded width.
public final class MobileNetV3: ImageClassifier, ModelFamily {
    /// MobileNetV3-Small: k kernel, s stride, e expansion, c output channels, se ratio.
    static let small: [[BlockSpec]] = [
        [.ds(k: 3, s: 2, c: 16, se: 0.25, act: .relu)],
        [.ir(r: 1, k: 3, s: 2, e: 4.5, c: 24, act: .relu), .ir(r: 1, k: 3, s: 1, e: 3.67, c: 24, act: .relu)],
        [.ir(r: 1, k: 5, s: 2, e: 4, c: 40, se: 0.25), .ir(r: 2, k: 5, s: 1, e: 6, c: 40, se: 0.25)],
        [.ir(r: 2, k: 5, s: 1, e: 3, c: 48, se: 0.25)],
        [.ir(r: 3, k: 5, s: 2, e: 6, c: 96, se: 0.25)],
        [.cn(k: 1, s: 1, c: 576)],
    ]

    /// MobileNetV3-Large.
    static let large: [[BlockSpec]] = [
        [.ds(k: 3, s: 1, c: 16, act: .relu)],
        [.ir(r: 1, k: 3, s: 2, e: 4, c: 24, act: .relu), .ir(r: 1, k: 3, s: 1, e: 3, c: 24, act: .relu)],
        [.ir(r: 3, k: 5, s: 2, e: 3, c: 40, se: 0.25, act: .relu)],
        [.ir(r: 1, k: 3, s: 2, e: 6, c: 80), .ir(r: 1, k: 3, s: 1, e: 2.5, c: 80), .ir(r: 2, k: 3, s: 1, e: 2.3, c: 80)],
        [.ir(r: 2, k: 3, s: 1, e: 6, c: 112, se: 0.25)],
        [.ir(r: 3, k: 5, s: 2, e: 6, c: 160, se: 0.25)],
        [.cn(k: 1, s: 1, c: 960)],
    ]

    /// timm's fine-grained `group_matcher`: the stem, then each block in stage order; the head
    /// (conv_head, classifier) is unmatched and comes last.
    public static let layerGroups = LayerGroupMatcher([.init(group: 0, #/^conv_stem|bn1/#, "^conv_stem|bn1"),
                                                       .init(group: 1, #/^blocks\.(\d+)\.(\d+)/#, #"^blocks\.(\d+)\.(\d+)"#)])

    public static let variants: [String: ModelRegistry.Builder] = [
        "mobilenetv3_small_100": { MobileNetV3(name: "mobilenetv3_small_100", stages: small, headChannels: 1024, options: $0) },
        "mobilenetv3_large_100": { MobileNetV3(name: "mobilenetv3_large_100", stages: large, headChannels: 1280, options: $0) },
    ]

    let convStem: Conv2d
    let bn1: BatchNorm2d
    let blocks: Sequential
    let convHead: Conv2d
    let dropRate: Float
    private(set) var classifier: Linear
    let headChannels: Int

    init(name: String, stages: [[BlockSpec]], headChannels: Int, options: ModelOptions) {
        let style = EfficientNetStyle(activation: .hardswish, bnEps: 1e-5, tfSame: false, seGate: .hardsigmoid, seFromExpanded: true)
        convStem = style.conv(3, 16, k: 3, s: 2)
        bn1 = style.bn(16, .hardswish)
        let (b, c) = buildStages(stages, inChannels: 16, style: style, roundChannels: { roundChannels($0, multiplier: 1) },
                                 dropPathRate: options.dropPathRate)
        blocks = b
        convHead = Conv2d(c, headChannels, kernelSize: 1, bias: true)
        self.headChannels = headChannels
        classifier = Linear(headChannels, options.numClasses)
        dropRate = options.dropRate
        super.init(modelName: name, numClasses: options.numClasses, pretrainedConfig: .imagenet)
        register("conv_stem", convStem)
        register("bn1", bn1)
        register("blocks", blocks)
        register("conv_head", convHead)
        register("classifier", classifier)
    }

    public override func forwardFeatures(_ x: Tensor) -> Tensor { blocks(convBatchNorm(convStem, bn1, x)) }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor {
        let pooled = adaptiveAvgPool2d(features, outputSize: (1, 1))
        let h = convHead(pooled).hardswish().flattened(from: 1)
        if preLogits { return h }
        return classifier(dropout(h, p: dropRate, training: isTraining, using: randomSource))
    }

    public override func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        classifier = Linear(headChannels, numClasses)
        initGoog(classifier, using: &rng)
        register("classifier", classifier)
        setNumClasses(numClasses)
    }

    public override func initializeWeights(using rng: inout RandomGenerator) { initGoog(self, using: &rng) }
}
