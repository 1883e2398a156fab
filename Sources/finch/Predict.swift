import ArgumentParser
import Foundation
import FinchTrain

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Top-k classes with probabilities for each image.")

    @Option(help: "Finch checkpoint or weights file.")
    var checkpoint: String

    @Argument(help: "JPEG or PNG images.")
    var images: [String]

    @Option(help: "Classes to list per image (default: 5, or every class of a model with fewer).")
    var topK: Int?

    @Option(help: "Model name, for weights files that do not record it.")
    var model: String?

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func validate() throws {
        // The upper end (the model's class count) is checked once the model is loaded.
        if let topK { try checkOption("top-k", topK, 1...TrainConfig.Limits.classes) }
    }

    mutating func run() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        let m = try ModelExport.load(URL(fileURLWithPath: checkpoint), modelName: model)
        let predictions = try ModelInference.predict(m, images: images.map { URL(fileURLWithPath: $0) }, topK: topK)
        if json {
            let doc: [[String: Any]] = predictions.map { p in
                ["file": p.file, "top": p.top.map { ["class": $0.label, "index": $0.index, "probability": $0.probability] }]
            }
            let data = try JSONSerialization.data(withJSONObject: ["model": m.modelName, "predictions": doc],
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for p in predictions {
                print(p.file)
                for t in p.top { print(String(format: "  %6.2f%%  ", t.probability * 100) + t.label) }
            }
        }
    }
}
