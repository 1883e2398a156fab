import Foundation
import SwiftProtobuf
import FinchTensor
import FinchNN

/// An exported Core ML model: the `Model` specification (an ML Program) and its weight file,
/// ready to be written as an `.mlpackage`.
public struct CoreMLPackage {
    var spec: CoreML_Specification_Model
    /// `weights/weight.bin`, in MIL blob storage format.
    public let weights: Data
    /// Blob-file constant name in the program for each state-dict name written (folded weights end in ".folded").
    public let weightNames: [String: String]

    /// The MIL op types of the program's main function, in order.
    public var operationTypes: [String] {
        spec.mlProgram.functions["main"]?.blockSpecializations["CoreML5"]?.operations.map(\.type) ?? []
    }

    /// The serialized `model.mlmodel`.
    public func specification() throws -> Data { try spec.serializedData() }
}

/// Exports a model's eval-mode forward pass as a Core ML ML Program (specification version 6:
/// iOS 15 / macOS 12, opset CoreML5), batch 1.
///
/// By default it is an app-ready classifier: input `image` is an RGB image at the traced
/// resolution, whose 0–255 pixels the program's first ops scale and shift per channel by
/// (x/255 − mean)/std, and the outputs are `classLabel` and `classLabel_probs` (softmax of the
/// logits through MIL's `classify`), which Xcode shows as a classifier and Vision reads as
/// labelled observations. `input: .tensor` takes float32 [1,3,H,W] already normalised and
/// returns `logits` float32 [1,K].
public struct CoreMLExporter: GraphExporter {
    public enum Precision: String, CaseIterable, Sendable { case float32, float16 }
    public enum Input: String, CaseIterable, Sendable { case image, tensor }

    public var precision: Precision
    public var input: Input
    /// Fold each BatchNorm that alone reads a convolution's output into that convolution.
    public var foldBatchNorm: Bool
    /// One per output class, in order (image input only needs them for the classifier).
    public var classLabels: [String]
    /// Per-channel mean and std of the normalisation the image input folds in (RGB, 0–1 scale).
    public var mean: [Float]
    public var std: [Float]
    public var shortDescription: String
    public var author: String
    public var version: String
    /// Written into the model's user-defined metadata (Xcode shows it).
    public var metadata: [String: String]

    public init(precision: Precision = .float16, input: Input = .image, foldBatchNorm: Bool = false, classLabels: [String] = [],
                mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225], shortDescription: String = "",
                author: String = "", version: String = "", metadata: [String: String] = [:]) {
        self.precision = precision
        self.input = input
        self.foldBatchNorm = foldBatchNorm
        self.classLabels = classLabels
        self.mean = mean
        self.std = std
        self.shortDescription = shortDescription
        self.author = author
        self.version = version
        self.metadata = metadata
    }

    public func graph(from trace: ModelTrace) throws -> CoreMLPackage {
        let chw = trace.inputShape
        ensure(chw[0] == 3 || input == .tensor, "Core ML export: an image input has 3 channels, got \(chw[0])")
        ensure(mean.count == chw[0] && std.count == chw[0], "Core ML export: mean and std need \(chw[0]) values")
        if input == .image {
            ensure(classLabels.count == trace.numClasses,
                   "Core ML export: \(classLabels.count) class labels for \(trace.numClasses) outputs")
        }
        let floatType: MILDataType = precision == .float16 ? .float16 : .float32
        let b = MILProgramBuilder(floatType: floatType)
        var lowering = CoreMLLowering(builder: b, parameterNames: trace.parameterNames)
        if foldBatchNorm { (lowering.replacements, lowering.foldedBiases) = foldedWeights(trace) }

        let inputName = input == .image ? "image" : "input"
        let inputShape = [1] + chw
        var x = MILVar(name: inputName, dtype: .float32, shape: inputShape)
        if input == .image {
            // Pixels 0–255 → (p/255 − mean)/std = p·scale + bias, in float32 before any cast.
            let scale = std.map { 1 / (255 * $0) }, bias = zip(mean, std).map { -$0 / $1 }
            let c = [1, chw[0], 1, 1]
            x = b.op("mul", [("x", .value(x)), ("y", .constant(.floats32(scale, shape: c)))], shape: inputShape, dtype: .float32,
                     name: "image_scaled")
            x = b.op("add", [("x", .value(x)), ("y", .constant(.floats32(bias, shape: c)))], shape: inputShape, dtype: .float32,
                     name: "image_normalized")
        }
        if floatType == .float16 {
            x = b.op("cast", [("x", .value(x)), ("dtype", .constant(.string("fp16")))], shape: inputShape, dtype: .float16,
                     name: "\(inputName)_to_fp16")
        }
        lowering.bind(trace.input, x)
        let skipped = foldBatchNorm ? foldedBatchNorms(trace) : [:]
        for op in trace.ops {
            if let conv = skipped[ObjectIdentifier(op.output)], let v = lowering.value(of: conv) {
                lowering.bind(op.output, v)   // the BatchNorm is in the convolution's weights
                continue
            }
            try lowering.lower(op)
        }
        guard var y = lowering.value(of: trace.output) else {
            throw ExportError.unstableTrace("the model's output is not produced by a traced op")
        }
        let k = trace.numClasses
        if floatType == .float16 {
            y = b.op("cast", [("x", .value(y)), ("dtype", .constant(.string("fp32")))], shape: y.shape, dtype: .float32, name: "logits_fp32")
        }
        let outputNames: [String]
        if input == .image {
            let p = b.op("softmax", [("x", .value(y)), ("axis", .constant(.int(-1)))], shape: y.shape, dtype: .float32, name: "probabilities")
            b.classify(p, labels: classLabels)
            outputNames = ["classLabel", "classLabel_probs"]
        } else {
            if y.name == inputName || y.shape != [1, k] {
                throw ExportError.unstableTrace("the model's output has shape \(y.shape), expected [1, \(k)]")
            }
            y = b.rename(y, to: "logits")
            outputNames = ["logits"]
        }

        var block = CoreML_Specification_MILSpec_Block()
        block.outputs = outputNames
        block.operations = b.operations
        var fn = CoreML_Specification_MILSpec_Function()
        var fnInput = CoreML_Specification_MILSpec_NamedValueType()
        fnInput.name = inputName
        fnInput.type = MILProgramBuilder.tensorType(.float32, inputShape)
        fn.inputs = [fnInput]
        fn.opset = "CoreML5"
        fn.blockSpecializations = ["CoreML5": block]
        var program = CoreML_Specification_MILSpec_Program()
        program.version = 1
        program.functions = ["main": fn]

        var desc = CoreML_Specification_ModelDescription()
        var inFeature = CoreML_Specification_FeatureDescription()
        inFeature.name = inputName
        if input == .image {
            var image = CoreML_Specification_ImageFeatureType()
            image.width = Int64(chw[2])
            image.height = Int64(chw[1])
            image.colorSpace = .rgb
            inFeature.type.imageType = image
            inFeature.shortDescription = "RGB image, \(chw[2])×\(chw[1])"
        } else {
            var array = CoreML_Specification_ArrayFeatureType()
            array.shape = inputShape.map(Int64.init)
            array.dataType = .float32
            inFeature.type.multiArrayType = array
            inFeature.shortDescription = "float32 [1,\(chw.map(String.init).joined(separator: ","))], RGB in 0–1 then (x − mean)/std"
        }
        desc.input = [inFeature]
        if input == .image {
            var label = CoreML_Specification_FeatureDescription()
            label.name = "classLabel"
            label.shortDescription = "Most likely class"
            label.type.stringType = CoreML_Specification_StringFeatureType()
            var probs = CoreML_Specification_FeatureDescription()
            probs.name = "classLabel_probs"
            probs.shortDescription = "Probability of each class"
            var dict = CoreML_Specification_DictionaryFeatureType()
            dict.stringKeyType = CoreML_Specification_StringFeatureType()
            probs.type.dictionaryType = dict
            desc.output = [label, probs]
            desc.predictedFeatureName = "classLabel"
            desc.predictedProbabilitiesName = "classLabel_probs"
        } else {
            var logits = CoreML_Specification_FeatureDescription()
            logits.name = "logits"
            logits.shortDescription = "Class scores before softmax"
            var array = CoreML_Specification_ArrayFeatureType()
            array.shape = [1, Int64(k)]
            array.dataType = .float32
            logits.type.multiArrayType = array
            desc.output = [logits]
        }
        desc.metadata.shortDescription = shortDescription
        desc.metadata.author = author
        desc.metadata.versionString = version
        desc.metadata.userDefined = metadata

        var model = CoreML_Specification_Model()
        model.specificationVersion = 6
        model.description_p = desc
        model.mlProgram = program
        return CoreMLPackage(spec: model, weights: b.blob.data, weightNames: lowering.weightNames)
    }

    /// BatchNorm ops to fold, by their output's identity → the convolution output they read.
    func foldedBatchNorms(_ trace: ModelTrace) -> [ObjectIdentifier: Tensor] {
        var readers: [ObjectIdentifier: Int] = [:]
        for op in trace.ops { for case let t? in op.inputs { readers[ObjectIdentifier(t), default: 0] += 1 } }
        var producer: [ObjectIdentifier: TracedOp] = [:]
        for op in trace.ops { producer[ObjectIdentifier(op.output)] = op }
        var folded: [ObjectIdentifier: Tensor] = [:]
        for op in trace.ops {
            guard case .batchNorm = op.kind, let x = op.inputs[0], readers[ObjectIdentifier(x)] == 1,
                  let conv = producer[ObjectIdentifier(x)], case .conv2d = conv.kind, let w = conv.inputs[1],
                  trace.parameterNames[ObjectIdentifier(w)] != nil, readers[ObjectIdentifier(w)] == 1,
                  x !== trace.output else { continue }
            folded[ObjectIdentifier(op.output)] = x
        }
        return folded
    }

    /// Conv weights with their BatchNorm folded in, w' = w·γ/√(σ²+ε), keyed by the weight tensor, and
    /// the biases b' = (b − μ)·γ/√(σ²+ε) + β, keyed by the convolution's output.
    func foldedWeights(_ trace: ModelTrace) -> (weights: [ObjectIdentifier: (values: [Float], name: String)],
                                                biases: [ObjectIdentifier: (values: [Float], name: String)]) {
        let bns = foldedBatchNorms(trace)
        var byOutput: [ObjectIdentifier: TracedOp] = [:]
        for op in trace.ops { byOutput[ObjectIdentifier(op.output)] = op }
        var weights: [ObjectIdentifier: (values: [Float], name: String)] = [:]
        var biases = weights
        for (bnOut, convOut) in bns {
            guard let bn = byOutput[bnOut], let conv = byOutput[ObjectIdentifier(convOut)], case .batchNorm(let eps) = bn.kind,
                  let w = conv.inputs[1], let wName = trace.parameterNames[ObjectIdentifier(w)] else { continue }
            let cout = w.shape[0], per = w.count / cout
            func vec(_ k: Int, _ fill: Float) -> [Float] {
                (k < bn.inputs.count ? bn.inputs[k]?.scalars : nil) ?? [Float](repeating: fill, count: cout)
            }
            let gamma = vec(1, 1), beta = vec(2, 0), mean = vec(3, 0), variance = vec(4, 1)
            let scale = (0..<cout).map { Double(gamma[$0]) / (Double(variance[$0]) + Double(eps)).squareRoot() }
            var w2 = w.scalars
            for o in 0..<cout { for i in 0..<per { w2[o * per + i] = Float(Double(w2[o * per + i]) * scale[o]) } }
            let b0 = (conv.inputs.count > 2 ? conv.inputs[2]?.scalars : nil) ?? [Float](repeating: 0, count: cout)
            let b2 = (0..<cout).map { Float((Double(b0[$0]) - Double(mean[$0])) * scale[$0] + Double(beta[$0])) }
            let prefix = wName.hasSuffix(".weight") ? String(wName.dropLast(7)) : wName
            weights[ObjectIdentifier(w)] = (w2, wName + ".folded")
            biases[ObjectIdentifier(convOut)] = (b2, prefix + ".bias.folded")
        }
        return (weights, biases)
    }
}
