import ArgumentParser
import Foundation
import FinchIO
import FinchParity

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a zoo model against a PyTorch/timm reference bundle (forward, loss, gradients, BatchNorm stats, AdamW step).",
        discussion: """
            Exits non-zero when any check misses its tolerance. The last line reads `compare: PASS k/k checks` or `compare: FAIL j/k checks`.
            When the reference holds the float64 answer and PyTorch float32's own error (f64.* and noise.*: make_golden.py --f64, make_parity.py), \
            logits, loss, gradients and BatchNorm buffers must be within 3× PyTorch's float32 distance to float64 plus 4 float32 ulps of the \
            output's scale; each such check prints its ratio (Finch's distance ÷ PyTorch's), and the summary the worst per family. \
            Where the reference also holds gate flips (flip.*: a ReLU/ReLU6 gate within PyTorch's own rounding of its kink, flipped in the \
            float64 backward), each mode's gradients pass when the base answer or one stored truth (a single flip, or a pair flipped \
            together in its own float64 run) makes all of them pass; a line `gates (train|eval): base` or `gates (…): GATE[n,c,h,w]` \
            (`A + B` for a pair) names the truth used (when none passes, the truth leaving fewest checks failing, as a hint). \
            `--gates` prints instead, for every admissible gate the reference lists, Finch's own pre-activation there and \
            whether it crossed the kink (FLIPPED).
            """)

    @Option(name: .long, help: "Reference file (.safetensors): a full bundle from make_golden.py or a compact fixture from make_parity.py.")
    var reference: String

    @Flag(help: "Print only failing checks and the per-family summary.")
    var quiet = false

    @Flag(help: "Instead of the checks: for every admissible ReLU/ReLU6 gate the reference lists (flips.admissible), Finch's pre-activation and whether it lies on the other side of the kink than float64 (FLIPPED), under this FINCH_KERNELS and thread count.")
    var gates = false

    mutating func run() throws {
        let url = URL(fileURLWithPath: reference)
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw ValidationError("cannot read reference file \(reference)")
        }
        if gates {
            let sides = try ParityComparison.gateSides(referenceAt: url)
            for s in sides { print(s.line) }
            for mode in ["eval", "train"] where sides.contains(where: { $0.gate.mode == mode }) {
                let of = sides.filter { $0.gate.mode == mode }, flipped = of.filter(\.flipped)
                print("gates flipped (\(mode)): \(flipped.count) of \(of.count) admissible (\(of.filter { $0.finch == nil }.count) not traced)"
                      + (flipped.isEmpty ? "" : ": " + flipped.map(\.gate.label).joined(separator: " + ")))
            }
            return
        }
        let report = try ParityComparison.run(referenceAt: url)
        for c in report.checks where !quiet || !c.passed {
            // Against float64 (f64.* and noise.* present) the ratio is Finch's distance over PyTorch float32's.
            let ratio = c.ratio.map { "  ratio=\(ratioText($0))" } ?? ""
            print("\(c.passed ? "ok  " : "FAIL") \(c.name)  max|Δ|=\(format(c.maxAbs)) max rel=\(format(c.maxRel))\(ratio)  (tol \(c.tolerance))")
        }
        // The truth each mode's gradients matched when the fixture has gate flips (make_parity.py).
        for g in report.gates { print(g.line) }
        print(report.summary)
        print(report.verdict)
        if !report.passed { throw ExitCode.failure }
    }

    private func format(_ x: Float) -> String { String(format: "%.3e", Double(x)) }
}
