import ArgumentParser
import Foundation
import FinchIO
import FinchParity

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a zoo model against a PyTorch/timm reference bundle (forward, loss, gradients, BatchNorm stats, AdamW step).",
        discussion: "Exits non-zero when any check misses its tolerance. The last line reads `compare: PASS k/k checks` or `compare: FAIL j/k checks`.")

    @Option(name: .long, help: "Reference file (.safetensors): a full bundle from make_golden.py or a compact fixture from make_parity.py.")
    var reference: String

    @Flag(help: "Print only failing checks and the per-family summary.")
    var quiet = false

    mutating func run() throws {
        let url = URL(fileURLWithPath: reference)
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw ValidationError("cannot read reference file \(reference)")
        }
        let report = try ParityComparison.run(referenceAt: url)
        for c in report.checks where !quiet || !c.passed {
            print("\(c.passed ? "ok  " : "FAIL") \(c.name)  max|Δ|=\(format(c.maxAbs)) max rel=\(format(c.maxRel))  (tol \(c.tolerance))")
        }
        print(report.summary)
        print(report.verdict)
        if !report.passed { throw ExitCode.failure }
    }

    private func format(_ x: Float) -> String { String(format: "%.3e", Double(x)) }
}
