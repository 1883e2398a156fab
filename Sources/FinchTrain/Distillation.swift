import FinchTensor
import FinchNN

/// Teacher–student loss terms.
public enum Distillation {
    public enum Kind: String, Sendable { case soft, hard }

    /// soft: (1 − α)·task + α·T²·KL(softmax(t/T) ‖ softmax(s/T)) with batchmean (Hinton et al.);
    /// hard: (1 − α)·task + α·CE(s, argmax t) (DeiT's hard distillation).
    public static func loss(task: Tensor, student: Tensor, teacher: Tensor, kind: Kind, alpha: Float, temperature: Float) -> Tensor {
        let t = teacher.detach()
        switch kind {
        case .soft:
            let kd = Loss.klDivergence((student / temperature).logSoftmax(axis: 1), target: (t / temperature).softmax(axis: 1))
            return task * (1 - alpha) + kd * (alpha * temperature * temperature)
        case .hard:
            return task * (1 - alpha) + Loss.crossEntropy(student, labels: t.argmax(axis: 1)) * alpha
        }
    }

    /// Re-normalises a batch prepared for the student (mean/std per channel) for a teacher trained
    /// with other statistics: x_t = (x·σ_s + μ_s − μ_t) / σ_t.
    public static func renormalize(_ x: Tensor, from s: (mean: [Float], std: [Float]), to t: (mean: [Float], std: [Float])) -> Tensor {
        if s.mean == t.mean && s.std == t.std { return x }
        let scale = Tensor((0..<3).map { s.std[$0] / t.std[$0] }, shape: [1, 3, 1, 1])
        let shift = Tensor((0..<3).map { (s.mean[$0] - t.mean[$0]) / t.std[$0] }, shape: [1, 3, 1, 1])
        return x * scale + shift
    }
}
