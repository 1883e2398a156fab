import Foundation

/// The `experiment` key names a folder under both the output and the checkpoint roots, so it
/// must be exactly one ordinary path component: "../../x" or "/abs" would put checkpoints and run
/// files outside those roots, and NUL, newlines or other control characters make names that
/// tools and the printed resume command cannot carry.
public enum ExperimentName {
    /// Longest file name most file systems accept (NAME_MAX), in UTF-8 bytes.
    public static let maxBytes = 255

    public static func validate(_ name: String, source: String) throws {
        let problem: String?
        if name.isEmpty {
            problem = "is empty"
        } else if name == "." || name == ".." {
            problem = "is a relative folder reference"
        } else if name.contains("/") {
            problem = "contains '/'"
        } else if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            problem = "contains a control character"
        } else if name.utf8.count > maxBytes {
            problem = "is longer than \(maxBytes) bytes"
        } else {
            problem = nil
        }
        if let problem {
            throw ConfigError(file: source, key: "experiment",
                              message: "\(name.debugDescription) \(problem); it must be one plain folder name, as it becomes a folder under 'output' and 'checkpoints'")
        }
    }
}
