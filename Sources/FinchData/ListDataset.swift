import Foundation

/// A CSV list of `path,label` lines as a dataset, for splits that folders do not express.
/// Paths are relative to the list file's folder unless absolute; a first line `path,label`
/// (any case) is a header; fields may be double-quoted (paths with commas). Labels are class
/// names; when every label is an integer the classes sort numerically, otherwise bytewise as
/// ImageFolder sorts folders. Pass `classes` to pin the class list (a validation list must use
/// the training list's classes).
extension ImageFolder {
    public init(listFile url: URL, classes fixed: [String]? = nil) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw DatasetError(path: url.path, reason: "cannot read the list file (\(error.localizedDescription))")
        }
        let folder = url.deletingLastPathComponent()
        var rows: [(url: URL, label: String)] = []
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = try Self.csvFields(line, file: url.path, line: n + 1)
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DatasetError(path: "\(url.path):\(n + 1)", reason: "expected 'path,label', got '\(line)'")
            }
            if rows.isEmpty && fields[0].lowercased() == "path" && fields[1].lowercased() == "label" { continue }
            let file = fields[0].hasPrefix("/") ? URL(fileURLWithPath: fields[0]) : folder.appendingPathComponent(fields[0])
            guard FileManager.default.isReadableFile(atPath: file.path) else {
                throw DatasetError(path: "\(url.path):\(n + 1)", reason: "image '\(fields[0])' not found or unreadable")
            }
            rows.append((file, fields[1]))
        }
        guard !rows.isEmpty else { throw DatasetError(path: url.path, reason: "the list has no 'path,label' rows") }
        let names = Set(rows.map(\.label))
        let classes: [String]
        if let fixed {
            for l in names where !fixed.contains(l) {
                throw DatasetError(path: url.path, reason: "label '\(l)' is not one of the classes (\(fixed.joined(separator: ", ")))")
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
