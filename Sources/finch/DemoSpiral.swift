import Foundation
import ArgumentParser
import FinchTensor

/// Fits a two-layer MLP to three interleaved spirals with Finch's autodiff: a small,
/// complete check that the tensor library learns something a linear model cannot.
struct DemoSpiral: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spiral",
        abstract: "Train a 2-layer MLP on a synthetic 3-class spiral and print the loss falling.")

    @Option(help: "Points per class.") var points: Int = 200
    @Option(help: "Hidden units.") var hidden: Int = 64
    @Option(help: "Full-batch gradient steps.") var steps: Int = 1000
    @Option(help: "Learning rate (SGD with momentum 0.9).") var lr: Float = 0.1
    @Option(help: "Random seed for data and initialisation.") var seed: UInt64 = 42

    func validate() throws {
        // Bounded above too: points × hidden sizes the activations, and a demo should not ask for gigabytes.
        try checkOption("points", points, 1...100_000)
        try checkOption("hidden", hidden, 1...4096)
        try checkOption("steps", steps, OptionRange.steps)
        guard lr > 0, lr.isFinite, lr <= 100 else { throw ValidationError("--lr must be in (0, 100], got \(lr)") }
    }

    mutating func run() throws {
        var rng = RandomGenerator(seed: seed)
        let (x, labels) = spiral(pointsPerClass: points, classes: 3, using: &rng)
        let target = Tensor.oneHot(labels, classes: 3)
        let n = Float(labels.count)

        // Kaiming-uniform-like scales keep the ReLU layer's activations in range.
        let w1 = (Tensor.uniform([2, hidden], low: -1, high: 1, using: &rng) * (6 / 2 as Float).squareRoot()).requiringGrad()
        let b1 = Tensor(zeros: [hidden], requiresGrad: true)
        let w2 = (Tensor.uniform([hidden, 3], low: -1, high: 1, using: &rng) * (1 / Float(hidden)).squareRoot()).requiringGrad()
        let b2 = Tensor(zeros: [3], requiresGrad: true)
        let params = [w1, b1, w2, b2]
        let velocity = params.map { Tensor(zeros: $0.shape) }

        print("spiral: \(labels.count) points, 3 classes, MLP 2-\(hidden)-3, SGD lr=\(lr) momentum=0.9, seed=\(seed)")
        var accuracy: Float = 0
        for step in 1...steps {
            let logits = (x.matmul(w1) + b1).relu().matmul(w2) + b2
            let loss = -(logits.logSoftmax(axis: 1) * target).sum() / n
            loss.backward()
            noGrad {
                for (p, v) in zip(params, velocity) {
                    v.assign(v * 0.9 + p.grad!)
                    p.assign(p - v * lr)
                    p.grad = nil
                }
            }
            if step == 1 || step % max(1, steps / 10) == 0 || step == steps {
                let predicted = logits.argmax(axis: 1)
                accuracy = Float(zip(predicted, labels).filter { $0 == $1 }.count) / n
                print("step \(step)/\(steps) loss=\(fmt(Double(loss.item), 4)) accuracy=\(fmt(Double(accuracy) * 100, 1))%")
            }
        }
        print("spiral: final accuracy \(fmt(Double(accuracy) * 100, 1))%")
    }

    /// Three arms: radius grows linearly, angle sweeps 4 radians per arm with Gaussian noise.
    private func spiral(pointsPerClass: Int, classes: Int, using rng: inout RandomGenerator) -> (Tensor, [Int]) {
        var xs: [Float] = [], labels: [Int] = []
        for c in 0..<classes {
            for i in 0..<pointsPerClass {
                let r = Double(i) / Double(max(pointsPerClass - 1, 1))
                let t = Double(c) * 4 + 4 * r + rng.normal(mean: 0, std: 0.2)
                xs += [Float(r * sin(t)), Float(r * cos(t))]
                labels.append(c)
            }
        }
        return (Tensor(xs, shape: [labels.count, 2]), labels)
    }
}
