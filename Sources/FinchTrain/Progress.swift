import Foundation

/// Progress display: a redrawn bar with rate and ETA on a terminal, plain lines otherwise.
public final class ProgressReporter {
    public let isTerminal: Bool
    private var lastDraw = Date.distantPast

    public init(isTerminal: Bool = isatty(fileno(stdout)) != 0) { self.isTerminal = isTerminal }

    /// Mid-epoch update (drawn at most ~8 times a second, only on a terminal).
    public func step(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double?, imagesPerSecond: Double, eta: Double) {
        guard isTerminal, Date().timeIntervalSince(lastDraw) > 0.125 || batch == batches else { return }
        lastDraw = Date()
        let width = 24, filled = batches == 0 ? width : width * batch / batches
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let acc = accuracy.map { String(format: " acc %.3f", $0) } ?? ""
        let line = String(format: "\repoch %d/%d %@ %d/%d loss %.4f%@ %.0f img/s ETA %@ ", epoch, epochs, bar, batch, batches,
                          loss, acc, imagesPerSecond, Self.duration(eta))
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// End of an epoch: one line (replacing the bar on a terminal).
    public func epochLine(_ text: String) {
        if isTerminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        print(text)
        fflush(stdout)
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
