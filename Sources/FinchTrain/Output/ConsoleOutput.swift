import Foundation
import Logging

/// The command-line programs' output: `train`, `finch` and the experiment scripts call
/// `ConsoleOutput.bootstrap()` first thing, and the library's records and progress then appear
/// exactly as the programs have always printed them. A library user who does not call it gets
/// swift-log's own default, or whatever handler their app bootstraps.
public enum ConsoleOutput {
    /// Once per process (`LoggingSystem.bootstrap` refuses a second call).
    public static func bootstrap() {
        LoggingSystem.bootstrap { _ in ConsoleLogHandler() }
        ProgressReporter.defaultDisplay = TerminalProgressBar()
    }
}

/// Prints each record as its bare message, one line: the messages are worded as the command line
/// shows them (no timestamp, level or label is added). Below `.warning` they go to stdout through
/// the same buffered stream as the programs' own `print`, so lines keep their order; from
/// `.warning` up to stderr, unbuffered.
public struct ConsoleLogHandler: LogHandler {
    public enum Stream: Sendable { case standardOutput, standardError }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let write: @Sendable (Stream, String) -> Void

    public init(write: @escaping @Sendable (Stream, String) -> Void = ConsoleLogHandler.writeToProcessStreams) {
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        write(event.level >= .warning ? .standardError : .standardOutput, "\(event.message)\n")
    }

    public static let writeToProcessStreams: @Sendable (Stream, String) -> Void = { stream, text in
        switch stream {
        case .standardOutput:
            print(text, terminator: "")
            fflush(stdout)
        case .standardError:
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}

/// The bar `train` redraws on a terminal: position, loss, running accuracy, rate and ETA on one
/// line, replaced by the epoch's summary line when the epoch ends. Written straight to the stdout
/// descriptor (a partial line that the buffered stream would hold back).
public final class TerminalProgressBar: ProgressDisplay {
    public init() {}

    public func show(_ update: ProgressUpdate) {
        FileHandle.standardOutput.write(Data(Self.line(update).utf8))
    }

    public func clear() {
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
    }

    /// `\repoch 2/10 ████████········ 40/60 loss 0.4321 acc 0.870 512 img/s ETA 0:12 `
    public static func line(_ u: ProgressUpdate) -> String {
        let width = 24, filled = u.batches == 0 ? width : width * u.batch / u.batches
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let acc = u.accuracy.map { String(format: " acc %.3f", $0) } ?? ""
        return String(format: "\repoch %d/%d %@ %d/%d loss %.4f%@ %.0f img/s ETA %@ ", u.epoch, u.epochs, bar, u.batch, u.batches,
                      u.loss, acc, u.imagesPerSecond, ProgressReporter.duration(u.eta))
    }
}
