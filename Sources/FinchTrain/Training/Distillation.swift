import FinchTensor
import FinchNN

/// Teacher–student loss terms.
public enum Distillation {
    public enum Kind: String, Sendable { case soft, hard }

    /// soft: (1 − α)·task + α·T²·KL(softmax(t/T) ‖ softmax(s/T)) with batchmean (Hinton et al.);
    /// hard: (1 − α)·task + α·CE(s, argmax t) (DeiT's hard distillation).
    public static func loss(task: Tensor, student: Tensor, teacher: Tensor, kind: Kind, alpha: Float, temperature: Float) -> Tensor {
        // Mismatched outputs broadcast or read out of range into a meaningless loss (a 1000-class
        // teacher with a 5-class student trained to −4.95·10³⁰); TrainingSetup refuses such a pair
        // before the first step, this is the last line.
        ensure(student.rank == 2 && student.shape == teacher.shape,
                     "Distillation.loss: student logits \(student.shape) and teacher logits \(teacher.shape) must both be [N, classes]")
        ensure(temperature > 0 && temperature.isFinite, "Distillation.loss: temperature \(temperature) must be positive")
        let t = teacher.detach()
        switch kind {
        case .soft:
            let kd = Loss.klDivergence((student / temperature).logSoftmax(axis: 1), target: (t / temperature).softmax(axis: 1))
            return task * (1 - alpha) + kd * (alpha * temperature * temperature)
        case .hard:
            return task * (1 - alpha) + Loss.crossEntropy(student, labels: t.argmax(axis: 1)) * alpha
        }
    }

    /// The student's batch as the teacher expects it: re-normalised to the teacher's statistics and,
    /// when the teacher was trained at another resolution (`distill.teacher.image_size`), resized
    /// bilinearly to it.
    public static func teacherInput(_ x: Tensor, from s: (mean: [Float], std: [Float]), to t: (mean: [Float], std: [Float]),
                                    imageSize: Int?) -> Tensor {
        let y = renormalize(x, from: s, to: t)
        guard let size = imageSize, y.rank == 4, y.shape[2] != size || y.shape[3] != size else { return y }
        return interpolateBilinear(y, size: (size, size))
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
