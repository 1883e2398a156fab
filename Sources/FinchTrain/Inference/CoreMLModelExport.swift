import Foundation
import FinchTensor
import FinchIO

/// What `finch export --format coreml` takes beyond the model: precision, input kind, folding.
public struct CoreMLExportOptions: Sendable {
    /// float16 is coremltools' default for ML Programs, and the CLI's.
    public var precision: CoreMLExporter.Precision
    public var input: CoreMLExporter.Input
    public var foldBatchNorm: Bool
    /// The file the model came from, recorded in the package's metadata.
    public var source: String?

    public init(precision: CoreMLExporter.Precision = .float16, input: CoreMLExporter.Input = .image,
                foldBatchNorm: Bool = false, source: String? = nil) {
        self.precision = precision
        self.input = input
        self.foldBatchNorm = foldBatchNorm
        self.source = source
    }
}

extension ModelExport {
    /// The Core ML exporter configured for `m`: its class names, normalisation and metadata.
    public static func coreMLExporter(for m: DeployableModel, options: CoreMLExportOptions) -> CoreMLExporter {
        var meta = m.metadata
        meta["finch_version"] = FinchVersion.string
        meta["precision"] = options.precision.rawValue
        meta["input"] = options.input == .image
            ? "RGB image \(m.resolution)×\(m.resolution), 0–255; the program computes (x/255 − mean)/std"
            : "float32 [1,3,\(m.resolution),\(m.resolution)], RGB scaled to [0,1] then (x − mean)/std"
        if let source = options.source { meta["source"] = source }
        if let epoch = m.epoch { meta["epoch"] = String(epoch) }
        let shown = m.classes.prefix(5).joined(separator: ", ") + (m.classes.count > 5 ? ", …" : "")
        return CoreMLExporter(precision: options.precision, input: options.input, foldBatchNorm: options.foldBatchNorm,
                              classLabels: m.classes, mean: m.mean, std: m.std,
                              shortDescription: "\(m.modelName) image classifier (\(m.classes.count) classes: \(shown)), exported by Finch \(FinchVersion.string)",
                              author: "Finch \(FinchVersion.string)", version: m.epoch.map { "epoch \($0)" } ?? "", metadata: meta)
    }

    /// Writes `m` as a Core ML `.mlpackage` at `url` (atomically: a failed export leaves nothing).
    @discardableResult
    public static func exportCoreML(_ m: DeployableModel, to url: URL, options: CoreMLExportOptions = CoreMLExportOptions()) throws -> CoreMLPackage {
        try checkWritableFolder(of: url)
        let package = try coreMLExporter(for: m, options: options)
            .export(m.model, inputShape: [3, m.resolution, m.resolution], numClasses: m.model.numClasses, graphName: m.modelName)
        try package.write(to: url)
        return package
    }
}
