/// Up to `limit` of `candidates` closest to `name` by edit distance, for "did you mean" hints.
///
/// A missing key is most often a prefix slip (`model.` vs none) or a renamed layer, which a
/// plain edit distance ranks well enough; ties go to the name that sorts first.
/// Names are compared on their first 128 scalars and only the first 50 000 candidates are
/// scored, so a hostile header cannot turn an error message into minutes of work.
func nearestNames(to name: String, in candidates: [String], limit: Int = 3) -> [String] {
    let target = Array(name.unicodeScalars.prefix(128))
    let scored = candidates.prefix(50_000).map { ($0, editDistance(target, Array($0.unicodeScalars.prefix(128)))) }
    return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
}

/// Levenshtein distance with a single rolling row.
func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var diagonal = row[0]
        row[0] = i
        for j in 1...b.count {
            let above = row[j]
            row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
            diagonal = above
        }
    }
    return row[b.count]
}
