import ArgumentParser
import Foundation
import FinchNN
import FinchTrain

/// The zoo as a table: what `model.name` accepts, how big each model is, the input size its
/// pretrained weights expect, and whether those weights are on disk where the configs look.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the zoo's models: family, parameters (1000 classes), default resolution and whether pretrained weights are present.",
        discussion: "Pretrained weights are looked for as <weights-dir>/<model>.safetensors (or .h5, .pth), the path the Experiments configs give to model.pretrained; `finch import` writes them.")

    @Option(help: "Folder holding pretrained weights, one file per model.") var weightsDir: String = "Checkpoints"
    @Flag(help: "One JSON object per model, as a list.") var json = false

    struct Entry: Encodable {
        let model: String
        let family: String
        let parameters: Int
        let resolution: Int
        let cropPct: Double
        let interpolation: String
        let pretrained: String?

        enum CodingKeys: String, CodingKey {
            case model, family, parameters, resolution, interpolation, pretrained
            case cropPct = "crop_pct"
        }
    }

    static let weightExtensions = ["safetensors", "h5", "pth"]

    mutating func run() throws {
        let dir = URL(fileURLWithPath: weightsDir)
        var entries: [Entry] = []
        for name in ModelRegistry.names {
            guard let info = ModelRegistry.describe(name) else { continue }
            let pc = info.pretrainedConfig
            let weights = Self.weightExtensions.map { dir.appendingPathComponent("\(name).\($0)") }
                .first { FileManager.default.isReadableFile(atPath: $0.path) }
            entries.append(Entry(model: name, family: ModelRegistry.family(of: name) ?? "?", parameters: info.parameterCount,
                                 resolution: pc.inputSize, cropPct: Double(pc.cropPct), interpolation: pc.interpolation,
                                 pretrained: weights.map { weightsDir.hasSuffix("/") ? weightsDir + $0.lastPathComponent : weightsDir + "/" + $0.lastPathComponent }))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        let rows = [["model", "family", "params", "input", "crop_pct", "pretrained weights"]] + entries.map {
            [$0.model, $0.family, String(format: "%.2f M", Double($0.parameters) / 1e6), "\($0.resolution) px",
             String(format: "%.3g", $0.cropPct), $0.pretrained ?? "— (not in \(weightsDir)/)"]
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for r in rows {
            print(zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                  .trimmingCharacters(in: .whitespaces))
        }
        let present = entries.filter { $0.pretrained != nil }.count
        print("\(entries.count) models, \(present) with pretrained weights in \(weightsDir)/; train one with model.name (and model.pretrained: <weights-dir>/<model>.safetensors)")
    }
}
