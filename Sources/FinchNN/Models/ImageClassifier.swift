import FinchTensor

/// Preprocessing a model was trained with (timm's `pretrained_cfg`): what evaluation and
/// export need to feed it the way it expects.
public struct PretrainedConfig: Equatable, Sendable {
    public var inputSize: Int
    public var cropPct: Float
    public var interpolation: String
    public var mean: [Float]
    public var std: [Float]

    public static let imagenet = PretrainedConfig(inputSize: 224, cropPct: 0.875, interpolation: "bicubic",
                                                  mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// TensorFlow-trained models (the `tf_` EfficientNets): inputs scaled to [-1, 1].
    public static func inception(_ size: Int, cropPct: Float = 0.875) -> PretrainedConfig {
        PretrainedConfig(inputSize: size, cropPct: cropPct, interpolation: "bicubic",
                         mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    }
}

/// A classification network with timm's split into features, pooling and classifier head.
open class ImageClassifier: Module {
    /// Registry name (timm's), e.g. "mobilenetv3_small_100".
    public let modelName: String
    public private(set) var numClasses: Int
    public let pretrainedConfig: PretrainedConfig

    public init(modelName: String, numClasses: Int, pretrainedConfig: PretrainedConfig) {
        self.modelName = modelName
        self.numClasses = numClasses
        self.pretrainedConfig = pretrainedConfig
        super.init()
    }

    /// Feature map before global pooling, [N, C, H, W].
    open func forwardFeatures(_ x: Tensor) -> Tensor {
        ensureFailed("\(type(of: self)) does not implement forwardFeatures(_:)")
    }

    /// Pooling, any pre-logits layers, dropout and the classifier; `preLogits` stops before the classifier.
    open func forwardHead(_ features: Tensor, preLogits: Bool = false) -> Tensor {
        ensureFailed("\(type(of: self)) does not implement forwardHead(_:preLogits:)")
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        forwardHead(forwardFeatures(x))
    }

    /// Pooled feature vector the classifier sees, [N, numFeatures].
    public func embeddings(_ x: Tensor) -> Tensor { forwardHead(forwardFeatures(x), preLogits: true) }

    /// How the parameters form layers for layer-wise lr decay: the family's declaration for zoo
    /// models; nil (every parameter one layer) unless a subclass declares its own.
    open var groupMatcher: LayerGroupMatcher? { (type(of: self) as? any ModelFamily.Type)?.layerGroups }

    /// State-dict prefixes of the classifier (replaced when the class count changes).
    open var classifierPrefixes: [String] { ["classifier"] }

    /// Replaces the classifier with a freshly initialised one for `numClasses` outputs.
    open func resetClassifier(numClasses: Int, using rng: inout RandomGenerator) {
        ensureFailed("\(type(of: self)) does not implement resetClassifier(numClasses:using:)")
    }

    /// Records the new class count; subclasses call this from `resetClassifier`.
    public func setNumClasses(_ n: Int) { numClasses = n }

    /// The architecture's own initialisation (timm's `_init_weights` for this family), seeded.
    open func initializeWeights(using rng: inout RandomGenerator) {
        ensureFailed("\(type(of: self)) does not implement initializeWeights(using:)")
    }
}
