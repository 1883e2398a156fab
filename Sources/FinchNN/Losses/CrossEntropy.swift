import FinchTensor

/// Classification losses with `torch.nn.functional` semantics. Logits are [N, C]; labels are class indices.
public enum Loss {
    /// `F.cross_entropy(logits, labels, weight:, ignore_index:, label_smoothing:)` with mean reduction:
    /// (1−ε)·NLL + ε/C·Σ_c w_c·(−log p_c), both averaged over Σ w[y_i] of the kept samples.
    public static func crossEntropy(_ logits: Tensor, labels: [Int], labelSmoothing: Float = 0,
                                    classWeights: [Float]? = nil, ignoreIndex: Int? = nil) -> Tensor {
        ensure(logits.rank == 2 && logits.shape[0] == labels.count,
                     "cross_entropy: logits \(logits.shape) for \(labels.count) labels")
        ensure(labelSmoothing >= 0 && labelSmoothing <= 1, "cross_entropy: label smoothing \(labelSmoothing) not in [0, 1]")
        let c = logits.shape[1]
        if let w = classWeights { ensure(w.count == c, "cross_entropy: \(w.count) class weights for \(c) classes") }
        let logp = logits.logSoftmax(axis: 1)
        return nllWithSmoothing(logp, labels: labels, smoothing: labelSmoothing, classWeights: classWeights,
                                ignoreIndex: ignoreIndex, op: "cross_entropy")
    }

    /// `F.nll_loss(logProbabilities, labels, weight:, ignore_index:)` with mean reduction.
    public static func nll(_ logProbabilities: Tensor, labels: [Int], classWeights: [Float]? = nil,
                           ignoreIndex: Int? = nil) -> Tensor {
        ensure(logProbabilities.rank == 2 && logProbabilities.shape[0] == labels.count,
                     "nll_loss: input \(logProbabilities.shape) for \(labels.count) labels")
        return nllWithSmoothing(logProbabilities, labels: labels, smoothing: 0, classWeights: classWeights,
                                ignoreIndex: ignoreIndex, op: "nll_loss")
    }

    private static func nllWithSmoothing(_ logp: Tensor, labels: [Int], smoothing: Float, classWeights: [Float]?,
                                         ignoreIndex: Int?, op: String) -> Tensor {
        let n = labels.count, c = logp.shape[1]
        // Per-sample weight of the target term: w[y_i], 0 where ignored.
        var pick = [Float](repeating: 0, count: n * c)
        var denominator: Float = 0
        for (i, y) in labels.enumerated() {
            if let ig = ignoreIndex, y == ig { continue }
            ensure(y >= 0 && y < c, "\(op): label \(y) out of range for \(c) classes")
            let w = classWeights?[y] ?? 1
            pick[i * c + y] = w
            denominator += w
        }
        let nllTerm = -(logp * Tensor(pick, shape: [n, c])).sum()
        guard smoothing > 0 else { return nllTerm / denominator }
        var smooth = [Float](repeating: 0, count: n * c)
        for (i, y) in labels.enumerated() where !(ignoreIndex.map { y == $0 } ?? false) {
            for k in 0..<c { smooth[i * c + k] = classWeights?[k] ?? 1 }
        }
        let smoothTerm = -(logp * Tensor(smooth, shape: [n, c])).sum()
        return (nllTerm * (1 - smoothing) + smoothTerm * (smoothing / Float(c))) / denominator
    }

    /// timm's `SoftTargetCrossEntropy`: mean over samples of Σ_c −t_c·log softmax(x)_c.
    public static func softTargetCrossEntropy(_ logits: Tensor, targets: Tensor) -> Tensor {
        ensure(logits.shape == targets.shape && logits.rank == 2,
                     "soft_target_cross_entropy: logits \(logits.shape) vs targets \(targets.shape)")
        return -(logits.logSoftmax(axis: 1) * targets.detach()).sum() / Float(logits.shape[0])
    }

    /// `F.kl_div(input, target, reduction="batchmean", log_target:)`: input holds log-probabilities;
    /// Σ target·(log target − input) / N, with 0·log 0 = 0.
    public static func klDivergence(_ input: Tensor, target: Tensor, logTarget: Bool = false) -> Tensor {
        ensure(input.shape == target.shape && input.rank >= 1,
                     "kl_div: input \(input.shape) vs target \(target.shape)")
        let n = Float(input.shape[0])
        if logTarget {
            return (target.exp() * (target - input)).sum() / n
        }
        let logT = Tensor.where(target.greater(0), target.clamp(min: .leastNormalMagnitude).log(), Tensor(zeros: []))
        return (target * (logT - input)).sum() / n
    }
}
