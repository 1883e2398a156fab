import FinchTensor

/// Accumulates predictions over an evaluation pass: top-1/top-5, per-class and balanced accuracy,
/// confusion matrix (rows = true class, columns = predicted), mean loss.
public struct ClassificationMetrics: Sendable {
    public let numClasses: Int
    public private(set) var confusion: [[Int]]
    public private(set) var count = 0
    public private(set) var top1Correct = 0
    public private(set) var top5Correct = 0
    private var lossSum: Double = 0

    public init(numClasses: Int) {
        self.numClasses = numClasses
        confusion = Array(repeating: Array(repeating: 0, count: numClasses), count: numClasses)
    }

    /// Adds a batch: logits [N, C], labels, and the batch's mean loss.
    public mutating func add(logits: Tensor, labels: [Int], meanLoss: Float? = nil) {
        ensure(logits.rank == 2 && logits.shape[0] == labels.count && logits.shape[1] == numClasses,
                     "metrics: logits \(logits.shape) for \(labels.count) labels and \(numClasses) classes")
        let k = min(5, numClasses)
        let (_, topIdx) = logits.topk(k, axis: 1)
        for (i, y) in labels.enumerated() {
            let row = topIdx[(i * k)..<(i * k + k)]
            confusion[y][row.first!] += 1
            if row.first! == y { top1Correct += 1 }
            if row.contains(y) { top5Correct += 1 }
        }
        count += labels.count
        if let meanLoss { lossSum += Double(meanLoss) * Double(labels.count) }
    }

    /// Every count as a number to sum across ranks (FinchTrain/Distributed), and back.
    var summableCounts: [Double] {
        confusion.flatMap { $0.map(Double.init) } + [Double(top1Correct), Double(top5Correct), Double(count), lossSum]
    }

    init(numClasses: Int, summedCounts v: [Double]) {
        self.init(numClasses: numClasses)
        ensure(v.count == numClasses * numClasses + 4, "ClassificationMetrics: \(v.count) summed counts for \(numClasses) classes")
        confusion = (0..<numClasses).map { r in v[(r * numClasses)..<((r + 1) * numClasses)].map { Int($0) } }
        let n = numClasses * numClasses
        (top1Correct, top5Correct, count, lossSum) = (Int(v[n]), Int(v[n + 1]), Int(v[n + 2]), v[n + 3])
    }

    public var top1: Double { count == 0 ? 0 : Double(top1Correct) / Double(count) }
    public var top5: Double { count == 0 ? 0 : Double(top5Correct) / Double(count) }
    public var meanLoss: Double { count == 0 ? 0 : lossSum / Double(count) }

    /// Recall of each class (NaN-free: a class with no samples reports 0 and is left out of the balance).
    public var perClassAccuracy: [Double] {
        confusion.enumerated().map { c, row in
            let n = row.reduce(0, +)
            return n == 0 ? 0 : Double(row[c]) / Double(n)
        }
    }

    /// Mean per-class recall over classes present (sklearn's balanced_accuracy_score).
    public var balancedAccuracy: Double {
        let present = confusion.enumerated().filter { $0.element.reduce(0, +) > 0 }
        guard !present.isEmpty else { return 0 }
        return present.map { c, row in Double(row[c]) / Double(row.reduce(0, +)) }.reduce(0, +) / Double(present.count)
    }

    /// The confusion matrix as aligned text with class names.
    public func confusionTable(classes: [String]) -> String { Self.confusionTable(confusion, classes: classes) }

    public static func confusionTable(_ confusion: [[Int]], classes: [String]) -> String {
        let names = classes.count == confusion.count ? classes : (0..<confusion.count).map(String.init)
        let w = max(9, names.map(\.count).max() ?? 0, String(confusion.flatMap { $0 }.max() ?? 0).count)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = [pad("true\\pred") + " " + names.map(pad).joined(separator: " ")]
        for (i, row) in confusion.enumerated() {
            lines.append(pad(names[i]) + " " + row.map { pad(String($0)) }.joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
