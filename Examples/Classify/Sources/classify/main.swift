import Foundation
import FinchTrain

// classify CHECKPOINT IMAGE...: each image's three most likely classes, by a model trained with
// `train` (or exported by `finch export`), through Finch's inference API.
let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: classify CHECKPOINT IMAGE...\n".utf8))
    exit(2)
}

do {
    // The model with its classes and the preprocessing it was validated with.
    let model = try ModelExport.load(URL(fileURLWithPath: arguments[0]))
    let images = arguments.dropFirst().map { URL(fileURLWithPath: $0) }
    for prediction in try ModelInference.predict(model, images: images, topK: min(3, model.classes.count)) {
        let top = prediction.top.map { "\($0.label) \(String(format: "%.3f", $0.probability))" }
        print("\(prediction.file): \(top.joined(separator: ", "))")
    }
} catch {
    FileHandle.standardError.write(Data("classify: \(error)\n".utf8))
    exit(1)
}
