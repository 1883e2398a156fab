import FinchTensor

/// Weight initialisation schemes, by PyTorch's definitions of fan-in and fan-out
/// (for a conv weight [out, in/groups, kh, kw]: fan_in = in/groups·kh·kw, fan_out = out·kh·kw).
public enum Init {
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        ensure(shape.count >= 2, "init: fan-in/fan-out need at least 2 dimensions, got \(shape)")
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }

    public static func uniform(_ t: Tensor, _ low: Float, _ high: Float, using rng: inout RandomGenerator) {
        rng.fillUniform(UnsafeMutableBufferPointer(start: t.basePointer, count: t.count), low: low, high: high)
    }

    public static func normal(_ t: Tensor, mean: Float = 0, std: Float, using rng: inout RandomGenerator) {
        rng.fillNormal(UnsafeMutableBufferPointer(start: t.basePointer, count: t.count), mean: mean, std: std)
    }

    /// Normal(mean, std) redrawn until inside [a, b] (timm's `trunc_normal_` semantics).
    public static func truncatedNormal(_ t: Tensor, mean: Float = 0, std: Float, a: Float = -2, b: Float = 2,
                                       using rng: inout RandomGenerator) {
        let p = t.basePointer
        for i in 0..<t.count {
            var v: Float
            repeat { v = Float(rng.normal(mean: Double(mean), std: Double(std))) } while v < a || v > b
            p[i] = v
        }
    }

    public static func constant(_ t: Tensor, _ value: Float) {
        t.basePointer.update(repeating: value, count: t.count)
    }

    /// kaiming_uniform_(a=√5): PyTorch's default for Linear and Conv weights, U(±1/√fan_in).
    public static func pytorchDefault(weight: Tensor, bias: Tensor?, using rng: inout RandomGenerator) {
        let bound = 1 / Float(fans(weight.shape).fanIn).squareRoot()
        uniform(weight, -bound, bound, using: &rng)
        if let bias { uniform(bias, -bound, bound, using: &rng) }
    }

    /// kaiming_normal_(mode: fan_out, relu): N(0, √(2/fan_out)).
    public static func kaimingNormalFanOut(_ t: Tensor, using rng: inout RandomGenerator) {
        normal(t, std: (2 / Float(fans(t.shape).fanOut)).squareRoot(), using: &rng)
    }
}
