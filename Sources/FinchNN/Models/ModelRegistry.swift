import FinchTensor

/// Options every architecture takes, with timm's meanings.
public struct ModelOptions: Sendable {
    public var numClasses: Int
    /// Dropout before the classifier (timm `drop_rate`).
    public var dropRate: Float
    /// Stochastic depth (timm `drop_path_rate`).
    public var dropPathRate: Float

    public init(numClasses: Int = 1000, dropRate: Float = 0, dropPathRate: Float = 0) {
        self.numClasses = numClasses
        self.dropRate = dropRate
        self.dropPathRate = dropPathRate
    }
}

public enum ModelRegistryError: Error, CustomStringConvertible, Equatable {
    case unknownModel(String, available: [String])
    case invalidOption(String)

    public var description: String {
        switch self {
        case .unknownModel(let name, let available):
            return "unknown model '\(name)'; available: \(available.joined(separator: ", "))"
        case .invalidOption(let message):
            return message
        }
    }
}

/// An architecture family of the zoo: its variants by timm name, and how its parameters form
/// layers for layer-wise lr decay (timm's `group_matcher`, declared on the model as there).
public protocol ModelFamily: ImageClassifier {
    static var variants: [String: ModelRegistry.Builder] { get }
    static var layerGroups: LayerGroupMatcher { get }
}

/// The model zoo by timm name.
public enum ModelRegistry {
    public typealias Builder = (ModelOptions) -> ImageClassifier

    /// Each family lists its variants; the union is the zoo.
    static let builders: [String: Builder] = {
        var all: [String: Builder] = [:]
        for family in families {
            for (name, build) in family.variants { all[name] = build }
        }
        return all
    }()

    static let families: [any ModelFamily.Type] = [MobileNetV3.self, EfficientNetLite.self, MobileViT.self, ResNet.self]

    /// The layer groups the architecture of `name` declares; nil for names outside the zoo.
    public static func groupMatcher(for name: String) -> LayerGroupMatcher? {
        families.first { $0.variants[name] != nil }?.layerGroups
    }

    public static var names: [String] { builders.keys.sorted() }

    /// The architecture family `name` belongs to (its type's name, e.g. "EfficientNetLite"); nil outside the zoo.
    public static func family(of name: String) -> String? {
        families.first { $0.variants[name] != nil }.map { String(describing: $0) }
    }

    /// Parameter count (1000 classes) and pretrained input settings of `name`, from a model built
    /// without initialisation: listing the zoo should not draw 25 M random numbers per model.
    public static func describe(_ name: String) -> (parameterCount: Int, pretrainedConfig: PretrainedConfig)? {
        builders[name].map { build in
            let m = build(ModelOptions())
            return (m.parameterCount, m.pretrainedConfig)
        }
    }

    /// Builds `name` with the architecture's own seeded initialisation.
    public static func create(_ name: String, options: ModelOptions = ModelOptions(), seed: UInt64 = 0) throws -> ImageClassifier {
        guard let build = builders[name] else { throw ModelRegistryError.unknownModel(name, available: names) }
        guard options.numClasses > 0 else {
            throw ModelRegistryError.invalidOption("num_classes must be positive, got \(options.numClasses)")
        }
        guard (0..<1).contains(options.dropRate), (0..<1).contains(options.dropPathRate) else {
            throw ModelRegistryError.invalidOption(
                "drop_rate and drop_path_rate must be in [0, 1), got \(options.dropRate) and \(options.dropPathRate)")
        }
        let model = build(options)
        var rng = RandomGenerator(seed: seed)
        model.initializeWeights(using: &rng)
        model.setRandomSource(RandomSource(rng.derived(stream: 1)))
        return model
    }

    public static func create(_ name: String, numClasses: Int, dropRate: Float = 0, seed: UInt64 = 0) throws -> ImageClassifier {
        try create(name, options: ModelOptions(numClasses: numClasses, dropRate: dropRate), seed: seed)
    }
}
