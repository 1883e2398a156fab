import Foundation
import FinchNN
import FinchTensor

/// Renaming another codebase's state-dict keys to timm's, from a small rule file:
///
///     # comments and blank lines are ignored
///     ^_blocks\.(\d+)\._depthwise_conv\. => blocks.$1.conv_dw.     (regex => template, first match wins)
///     drop: num_batches_tracked$                                    (keys to leave out)
///     by-position                                                   (pair tensors in file order with the model's)
///
/// `by-position` pairs the i-th source tensor with the model's i-th state-dict entry and
/// checks every shape; when only one side has BatchNorm `num_batches_tracked` counters they
/// are left out of the pairing (the model keeps its own).
public struct KeyMapping {
    public var rules: [(pattern: NSRegularExpression, template: String)] = []
    public var drops: [NSRegularExpression] = []
    public var byPosition = false

    /// A rule file is a few lines; anything this large is the wrong file.
    static let maxFileSize = 1 << 20

    public init() {}

    public init(contentsOf url: URL) throws {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(url.path, what: "key-mapping file", limit: Self.maxFileSize) } catch let e as InputFileError {
            throw TorchFileError(file: url.path, reason: "cannot read the mapping file (\(inputFileReason(e)))")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TorchFileError(file: url.path, reason: "the mapping file is not UTF-8 text")
        }
        try self.init(text: text, file: url.path)
    }

    public init(text: String, file: String = "mapping") throws {
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func regex(_ p: String) throws -> NSRegularExpression {
                do { return try NSRegularExpression(pattern: p) } catch {
                    throw TorchFileError(file: "\(file):\(n + 1)", reason: "invalid regular expression '\(p)'")
                }
            }
            if line == "by-position" { byPosition = true }
            else if line.hasPrefix("drop:") { drops.append(try regex(String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces))) }
            else if let r = line.range(of: "=>") {
                let p = line[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
                let t = line[r.upperBound...].trimmingCharacters(in: .whitespaces)
                rules.append((try regex(p), t))
            } else {
                throw TorchFileError(file: "\(file):\(n + 1)", reason: "expected 'regex => name', 'drop: regex' or 'by-position', got '\(line)'")
            }
        }
    }

    func rename(_ key: String) -> String {
        let range = NSRange(key.startIndex..., in: key)
        for (p, t) in rules where p.firstMatch(in: key, range: range) != nil {
            return p.stringByReplacingMatches(in: key, range: range, withTemplate: t)
        }
        return key
    }

    /// The source tensors under the model's names.
    public func apply(to source: [(name: String, value: StateValue)], model: Module?, file: String) throws -> [(name: String, value: StateValue)] {
        var kept = source.filter { s in !drops.contains { $0.firstMatch(in: s.name, range: NSRange(s.name.startIndex..., in: s.name)) != nil } }
        kept = kept.map { (rename($0.name), $0.value) }
        guard byPosition else { return kept }
        guard let model else { throw TorchFileError(file: file, reason: "by-position mapping needs --model to know the target names") }
        var target = model.stateDict()
        let counter = "num_batches_tracked"
        if kept.count != target.count {
            kept = kept.filter { !$0.name.hasSuffix(counter) }
            target = target.filter { !$0.name.hasSuffix(counter) }
        }
        guard kept.count == target.count else {
            throw TorchFileError(file: file, reason: "by-position: the file has \(kept.count) tensors, the model \(target.count)")
        }
        return try zip(kept, target).enumerated().map { i, pair in
            guard pair.0.value.shape == pair.1.value.shape else {
                throw TorchFileError(file: file, reason: "by-position: tensor \(i) '\(pair.0.name)' has shape \(pair.0.value.shape) but the model's '\(pair.1.name)' is \(pair.1.value.shape)")
            }
            return (pair.1.name, pair.0.value)
        }
    }
}
