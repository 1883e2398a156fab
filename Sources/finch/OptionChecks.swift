import ArgumentParser
import FinchTrain

/// Numeric options are checked before any work starts, with the option's name, its range and the
/// value given: zero, negative and absurd values are refused here rather than becoming an empty
/// loop, a division by zero or an allocation of terabytes later.
func checkOption(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws {
    guard range.contains(value) else {
        throw ValidationError("--\(name) must be in \(range.lowerBound)…\(range.upperBound), got \(value)")
    }
}

enum OptionRange {
    static let batch = 1...TrainConfig.Limits.batchSize
    static let workers = 0...TrainConfig.Limits.workers
    static let threads = 1...256
    static let resolution = TrainConfig.Limits.minImageSize...TrainConfig.Limits.maxImageSize
    static let classes = 1...TrainConfig.Limits.classes
    static let steps = 1...1_000_000
}
