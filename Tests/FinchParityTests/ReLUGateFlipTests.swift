import XCTest
import Foundation
@testable import FinchTensor
@testable import FinchNN
@testable import FinchIO

/// Why resnet18_96_10 failed the float64 rule at two threads only (ratio 6318, 108 checks) while one
/// and three threads passed: not a partitioning bug but one ReLU gate. (Measured with the former F(4×4)
/// points; with 0, ±⅔, ±3⁄2, ∞ the gate stays shut at 1 and 2 threads on AVX-512 and opens on avx2
/// at 2 threads instead (Benchmarks/WinogradRounding.md); the assertions below hold either way.) In layer4.1.bn1's output
/// ([2, 512, 3, 3], BatchNorm over 18 values per channel) one pre-activation lies 5·10⁻⁶ from zero;
/// the thread count's summation order puts it on the other side (−5.2·10⁻⁶ at one thread, the
/// float64 side, +1.9·10⁻⁶ at two), which passes one whole element's gradient (5·10⁻³) into channel
/// 243 and from there, through the 3×3 convolutions, into every earlier gradient. Two float32 runs
/// of the same model move these pre-activations by up to 4·10⁻⁵, so any value that close to zero can
/// land either way; PyTorch's 14 float32 orders (the fixture's noise, make_parity.py) all land on
/// float64's side (float64: −5.8·10⁻⁶; PyTorch: −1.05·10⁻⁵ to −1.0·10⁻⁶), Finch at two threads
/// +1.9·10⁻⁶ is 7.7·10⁻⁶ from float64 where PyTorch's layer-wide distance is 2–3.6·10⁻⁵. This test pins that explanation: every channel whose gradient differs between one
/// and two threads by more than rounding holds a pre-activation that changed sign and sat within
/// noise of zero, and every other channel agrees to rounding — a blocking or partitioning error that
/// depends on the thread count would break the second assertion.
final class ReLUGateFlipTests: XCTestCase {
    /// layer4.1.bn1's pre-activation (train mode) and layer4.1.bn1.bias's gradient after a training step.
    private func run(threads: Int) throws -> (pre: [Float], grad: [Float], shape: [Int]) {
        Parallel.setThreads(threads)
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/parity/resnet18_96_10.safetensors").standardized
        let labels = try SafeTensorsFile(contentsOf: url).int64s("target").map { Int($0) }
        let input = ProceduralWeights.input(batch: 2, resolution: 96)
        let model = try XCTUnwrap(try ModelRegistry.create("resnet18", numClasses: 10) as? ResNet)
        try ProceduralWeights.fill(model)
        model.train()
        Loss.crossEntropy(model(input), labels: labels).backward()
        let block = try XCTUnwrap(model.stages[3].layers[1] as? BasicBlock)
        let grad = try XCTUnwrap(block.bn1.bias.grad).scalars
        // The block's input again, then bn1 without its ReLU (batch statistics, as in the step).
        var pre: [Float] = [], shape: [Int] = []
        noGrad {
            var h = maxPool2d(convBatchNorm(model.conv1, model.bn1, input), kernel: (3, 3), stride: (2, 2), padding: (1, 1))
            for s in 0..<3 { h = model.stages[s](h) }
            h = model.stages[3].layers[0](h)
            block.bn1.activation = .identity
            defer { block.bn1.activation = .relu }
            let z = block.bn1(block.conv1(h))
            pre = z.scalars
            shape = z.shape
        }
        return (pre, grad, shape)
    }

    func testThreadCountChangesResNet18GradientsOnlyThroughReLUGates() throws {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        let one = try run(threads: 1), two = try run(threads: 2)
        XCTAssertEqual(one.shape, [2, 512, 3, 3])
        let channels = one.shape[1], plane = one.shape[2] * one.shape[3]
        let moved = zip(one.pre, two.pre).map { abs($0 - $1) }.max() ?? 0
        var flipped = Set<Int>()
        for i in one.pre.indices where (one.pre[i] > 0) != (two.pre[i] > 0) {
            flipped.insert((i / plane) % channels)
            // A gate flips only where the two summation orders straddle zero.
            XCTAssertLessThanOrEqual(abs(one.pre[i] - two.pre[i]), moved)
            XCTAssertLessThan(max(abs(one.pre[i]), abs(two.pre[i])), 1e-4, "element \(i) changed sign far from zero")
        }
        for c in 0..<channels {
            let d = abs(one.grad[c] - two.grad[c])
            if flipped.contains(c) {
                print("channel \(c): gate flipped, bn1.bias gradient \(one.grad[c]) vs \(two.grad[c])")
            } else {
                // Rounding alone: the gradients are of order 10⁻², their float32 noise of order 10⁻⁷.
                XCTAssertLessThan(d, 1e-6, "channel \(c) differs by \(d) without a gate flip")
            }
        }
        print("largest pre-activation change between 1 and 2 threads: \(moved); gates flipped in channels \(flipped.sorted())")
    }
}
