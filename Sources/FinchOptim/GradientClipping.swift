import FinchTensor

/// `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
public enum GradientClipping {
    /// Scales all gradients by min(1, maxNorm / (total + 1e-6)) where total is the norm of the
    /// per-parameter norms; returns the total norm before clipping (what timm logs).
    @discardableResult
    public static func clipNorm(_ parameters: [Tensor], maxNorm: Float, normType: Float = 2) -> Float {
        let grads = parameters.compactMap(\.grad)
        var total: Double = 0
        if normType.isInfinite {
            for g in grads { total = Swift.max(total, Double(g.abs().max().item)) }
        } else {
            for g in grads {
                g.withContiguousBuffer { b in
                    var s: Double = 0
                    for v in b { s += pow(Double(Swift.abs(v)), Double(normType)) }
                    total += s
                }
            }
            total = pow(total, 1 / Double(normType))
        }
        let coef = Float(Double(maxNorm) / (total + 1e-6))
        if coef < 1 {
            for g in grads where g.isContiguous {
                let p = g.basePointer
                for i in 0..<g.count { p[i] *= coef }
            }
        }
        return Float(total)
    }

    /// Clamps every gradient element into [−clip, clip].
    public static func clipValue(_ parameters: [Tensor], clip: Float) {
        ensure(clip >= 0, "clip_grad_value: clip \(clip) is negative")
        for g in parameters.compactMap(\.grad) where g.isContiguous {
            let p = g.basePointer
            for i in 0..<g.count { p[i] = Swift.min(Swift.max(p[i], -clip), clip) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
