import Foundation
import FinchTensor

/// A CSV list of `path,label` lines as a dataset, for splits that folders do not express.
/// Paths are relative to the list file's folder unless absolute; a first line `path,label`
/// (any case) is a header; fields may be double-quoted (paths with commas). Labels are class
/// names; when every label is an integer the classes sort numerically, otherwise bytewise as
/// ImageFolder sorts folders. Pass `classes` to pin the class list (a validation list must use
/// the training list's classes).
///
/// Hostile lists are refused with the list file and line: a list over `maxListBytes`, text that
/// is not UTF-8, malformed lines, image paths that are missing, not regular files (directories,
/// FIFOs) or unreadable, and integer labels mixed with others, negative, or beyond `Int`.
extension ImageFolder {
    /// 64 MiB: about a million lines of long paths.
    public static let maxListBytes = 64 << 20

    public init(listFile url: URL, classes fixed: [String]? = nil) throws {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(url.path, what: "list file", limit: Self.maxListBytes) } catch {
            throw DatasetError(path: url.path, reason: "cannot read the list file (\(error))")
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw DatasetError(path: url.path, reason: "the list file is not UTF-8 text")
        }
        let folder = url.deletingLastPathComponent()
        var rows: [(url: URL, label: String, line: Int)] = []
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let at = "\(url.path):\(n + 1)"
            let fields = try Self.csvFields(line, file: url.path, line: n + 1)
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DatasetError(path: at, reason: "expected 'path,label', got '\(line.prefix(200))'")
            }
            if rows.isEmpty && fields[0].lowercased() == "path" && fields[1].lowercased() == "label" { continue }
            guard !fields[0].contains("\0") else { throw DatasetError(path: at, reason: "the path contains a NUL character") }
            let file = fields[0].hasPrefix("/") ? URL(fileURLWithPath: fields[0]) : folder.appendingPathComponent(fields[0])
            do { try Self.requireImageFile(file.path) } catch let e as DatasetError {
                throw DatasetError(path: at, reason: "image '\(fields[0])' \(e.reason)")
            }
            rows.append((file, fields[1], n + 1))
        }
        guard !rows.isEmpty else { throw DatasetError(path: url.path, reason: "the list has no 'path,label' rows") }
        // Integer labels are class indices in PyTorch lists: once one label is an integer, all must be
        // non-negative integers, compared by value ("07" is "7").
        if let first = rows.first(where: { Int($0.label) != nil }) {
            for i in rows.indices {
                let at = "\(url.path):\(rows[i].line)"
                guard let v = Int(rows[i].label) else {
                    throw DatasetError(path: at, reason: "label '\(rows[i].label)' is not an integer, but line \(first.line) has the integer label '\(first.label)'")
                }
                guard v >= 0 else { throw DatasetError(path: at, reason: "label \(v) is negative") }
                rows[i].label = String(v)
            }
        }
        let names = Set(rows.map(\.label))
        let classes: [String]
        if let fixed {
            guard Set(fixed).count == fixed.count else { throw DatasetError(path: url.path, reason: "the given class list repeats a class") }
            for r in rows where !fixed.contains(r.label) {
                throw DatasetError(path: "\(url.path):\(r.line)", reason: "label '\(r.label)' is not one of the classes (\(fixed.prefix(20).joined(separator: ", "))\(fixed.count > 20 ? ", …" : ""))")
            }
            classes = fixed
        } else if names.allSatisfy({ Int($0) != nil }) {
            classes = names.sorted { Int($0)! < Int($1)! }
        } else {
            classes = names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        self.init(root: folder, classes: classes, samples: rows.map { ($0.url, index[$0.label]!) })
    }

    static func csvFields(_ line: String, file: String, line n: Int) throws -> [String] {
        var fields: [String] = [], cur = "", quoted = false, i = line.startIndex
        while i < line.endIndex {
            let ch = line[i]
            if quoted {
                if ch == "\"" {
                    let next = line.index(after: i)
                    if next < line.endIndex && line[next] == "\"" { cur.append("\""); i = next } else { quoted = false }
                } else { cur.append(ch) }
            } else if ch == "\"" && cur.isEmpty {
                quoted = true
            } else if ch == "," {
                fields.append(cur.trimmingCharacters(in: .whitespaces)); cur = ""
            } else { cur.append(ch) }
            i = line.index(after: i)
        }
        guard !quoted else { throw DatasetError(path: "\(file):\(n)", reason: "unterminated quote") }
        fields.append(cur.trimmingCharacters(in: .whitespaces))
        return fields
    }
}
