#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Activations with PyTorch's exact definitions, including the boundary conventions of
// their backward kernels (which side of a kink gets the gradient).

extension Tensor {
    public func relu() -> Tensor {
        let out = Kernels.map(self, ReLUKernel.self)
        if SavedActivations.chains, let input = recipe {
            // The input can be rebuilt (a residual sum of BatchNorm outputs, say): so can the output,
            // and neither the backward mask nor the next convolution keeps the map (see `Rebuilt`).
            let rebuilt = Rebuilt(depth: input.depth + 1) { Rebuilt.relu(input) }
            let recorded = record(out, "relu", [self], .relu) { g in
                [Kernels.zip(g, rebuilt.value(), ReLUBackward.self, op: "relu_backward")]
            }
            recorded.setRematerialize(rebuilt)
            return recorded
        }
        let od = out.detach()
        return record(out, "relu", [self], .relu) { g in [Kernels.zip(g, od, ReLUBackward.self, op: "relu_backward")] }
    }

    /// min(max(x, 0), 6); gradient where 0 < x < 6 (hardtanh's open interval).
    public func relu6() -> Tensor {
        let out = Kernels.map(self, ReLU6Kernel.self)
        let xd = detach()
        return rebuildable(record(out, "relu6", [self], .relu6) { g in
            [Kernels.zip(g, xd, ReLU6Backward.self, op: "relu6_backward")]
        }) { Kernels.map(xd, ReLU6Kernel.self) }
    }

    public func leakyRelu(_ slope: Float = 0.01) -> Tensor {
        let out = Kernels.map(self) { $0 > 0 ? $0 : $0 * slope }
        let xd = detach()
        return record(out, "leaky_relu", [self], .leakyRelu(slope: slope)) { g in
            [Kernels.zip(g, xd, op: "leaky_relu_backward") { $1 > 0 ? $0 : $0 * slope }]
        }
    }

    public func sigmoid() -> Tensor {
        let out = Kernels.map(self, SigmoidKernel.self)
        let od = out.detach()
        return record(out, "sigmoid", [self], .sigmoid) { g in
            [Kernels.zip(g, od, SigmoidBackward.self, op: "sigmoid_backward")]
        }
    }

    public func tanh() -> Tensor {
        let out = Kernels.map(self) { tanhf($0) }
        let od = out.detach()
        return record(out, "tanh", [self], .tanh) { g in
            [Kernels.zip(g, od, op: "tanh_backward") { $0 * (1 - $1 * $1) }]
        }
    }

    /// relu6(x + 3) / 6; gradient 1/6 where -3 < x < 3.
    public func hardsigmoid() -> Tensor {
        let out = Kernels.map(self, HardSigmoidKernel.self)
        let xd = detach()
        return rebuildable(record(out, "hardsigmoid", [self], .hardSigmoid) { g in
            [Kernels.zip(g, xd, HardSigmoidBackward.self, op: "hardsigmoid_backward")]
        }) { Kernels.map(xd, HardSigmoidKernel.self) }
    }

    /// x · relu6(x + 3) / 6; PyTorch's backward: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
    public func hardswish() -> Tensor {
        let out = Kernels.map(self, HardSwishKernel.self)
        let xd = detach()
        return rebuildable(record(out, "hardswish", [self], .hardSwish) { g in
            [Kernels.zip(g, xd, HardSwishBackward.self, op: "hardswish_backward")]
        }) { Kernels.map(xd, HardSwishKernel.self) }
    }

    /// x · sigmoid(x) (also called swish).
    public func silu() -> Tensor {
        let out = Kernels.map(self, SiLUKernel.self)
        let xd = detach()
        return rebuildable(record(out, "silu", [self], .silu) { g in
            [Kernels.zip(g, xd, SiLUBackward.self, op: "silu_backward")]
        }) { Kernels.map(xd, SiLUKernel.self) }
    }

    /// `out` (this op's recorded result) with a recipe rebuilding it from the input the op keeps
    /// anyway, so a consumer need not keep the output too (see SavedTensor).
    private func rebuildable(_ out: Tensor, _ recipe: @escaping () -> Tensor) -> Tensor {
        out.setRematerialize(recipe)
        return out
    }

    public enum GELUApproximation: Sendable { case none, tanh }

    /// GELU: x·Φ(x) with the exact erf form, or PyTorch's `approximate="tanh"` form.
    public func gelu(approximate: GELUApproximation = .none) -> Tensor {
        let xd = detach()
        switch approximate {
        case .none:
            let out = Kernels.map(self) { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) }
            return record(out, "gelu", [self], .gelu(tanhApproximation: false)) { g in
                [Kernels.zip(g, xd, op: "gelu_backward") {
                    let cdf = 0.5 * (1 + erff($1 * 0.70710678118654752))
                    let pdf = expf(-0.5 * $1 * $1) * 0.39894228040143268
                    return $0 * (cdf + $1 * pdf)
                }]
            }
        case .tanh:
            let k: Float = 0.79788456080286536  // sqrt(2/pi)
            let c: Float = 0.044715
            let out = Kernels.map(self) { 0.5 * $0 * (1 + tanhf(k * ($0 + c * $0 * $0 * $0))) }
            return record(out, "gelu_tanh", [self], .gelu(tanhApproximation: true)) { g in
                [Kernels.zip(g, xd, op: "gelu_tanh_backward") {
                    let x = $1
                    let t = tanhf(k * (x + c * x * x * x))
                    let dInner = k * (1 + 3 * c * x * x)
                    return $0 * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner)
                }]
            }
        }
    }
}
