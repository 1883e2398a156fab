import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FinchTensor
import FinchNN
import FinchIO

/// PyTorch `.pth`/`.pt` state dicts (or safetensors/HDF5 from another codebase) into a timm-named
/// safetensors file Finch and timm both load. With --model the result is checked by a strict
/// load into that zoo model before anything is written.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a PyTorch .pth/.pt state dict (no Python, no code execution) to safetensors in timm names.",
        discussion: """
        Mapping rules (--map FILE), one per line: `regex => template` renames keys (first match wins, $1 for groups), \
        `drop: regex` leaves keys out, `by-position` pairs tensors in file order with the model's state dict, checking shapes.
        """)

    @Argument(help: "The .pth/.pt file (or .safetensors / .h5).") var file: String
    @Option(help: "Output safetensors file (written atomically).") var output: String
    @Option(help: "Zoo model (timm name) the weights are for; checks them by a strict load.") var model: String?
    @Option(help: "Classifier size, when it differs from the model's default of 1000.") var numClasses: Int?
    @Option(help: "Key-mapping rule file.") var map: String?

    mutating func validate() throws {
        if let n = numClasses, !(1...1_000_000).contains(n) {
            throw ValidationError("--num-classes must be between 1 and 1000000, got \(n)")
        }
        if Self.sameFile(file, output) {
            throw ValidationError("--output \(output) is the input file itself; choose another path so the source is kept")
        }
    }

    /// Whether two paths name one file: equal after resolving symlinks, or (when both exist) the
    /// same device and inode, which also catches hard links and bind mounts.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        let ua = URL(fileURLWithPath: a).resolvingSymlinksInPath().standardizedFileURL
        let ub = URL(fileURLWithPath: b).resolvingSymlinksInPath().standardizedFileURL
        if ua.path == ub.path { return true }
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    mutating func run() throws {
        let src = URL(fileURLWithPath: file)
        let tensors: [(name: String, value: StateValue)]
        if try WeightsFile.format(of: src) == .torch { tensors = try TorchCheckpoint.read(src) }
        else { tensors = try WeightsFile.read(src).state.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        let mapping = try map.map { try KeyMapping(contentsOf: URL(fileURLWithPath: $0)) } ?? KeyMapping()
        var net: ImageClassifier? = nil
        if let model {
            let head = tensors.first { $0.name == "classifier.weight" || $0.name == "fc.weight" || $0.name == "head.fc.weight" }
            let classes = numClasses ?? head?.value.shape.first ?? 1000
            guard classes >= 1 else {
                throw ValidationError("\(file): '\(head?.name ?? "")' has \(classes) rows, so the class count cannot come from it; pass --num-classes")
            }
            net = try ModelRegistry.create(model, numClasses: classes)
        }
        let mapped = try mapping.apply(to: tensors, model: net, file: file)
        var metadata = ["source": src.lastPathComponent, "format": "pt"]
        var entries: [(name: String, value: SafeTensorsValue)]
        if let net, let model {
            var sd: [String: StateValue] = [:]
            for (k, v) in mapped { sd[k] = v }
            do { try net.load(stateDict: sd, strict: true) } catch {
                throw ValidationError("\(file) does not fit \(model) after mapping: \(error)")
            }
            metadata["model"] = model
            metadata["num_classes"] = String(net.numClasses)
            entries = net.stateDict().map { ($0.name, SafeTensorsValue($0.value)) }
        } else {
            entries = mapped.map { ($0.name, SafeTensorsValue($0.value)) }
        }
        try writeSafeTensors(entries, metadata: metadata, to: URL(fileURLWithPath: output))
        print("import: \(tensors.count) tensors from \(src.lastPathComponent) → \(output)" + (model.map { " (checked by a strict load into \($0))" } ?? ""))
    }
}
