#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Arithmetic with NumPy broadcasting. Gradients of broadcast operands are summed back to
// the operand's shape (`sumToShape`).

extension Tensor {
    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        ensure(lead >= 0, "sumToShape: cannot reduce shape \(shape) to \(target)")
        var axes = Array(0..<lead)
        for (i, n) in target.enumerated() where n == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        let s = axes.isEmpty ? self : sum(axes: axes, keepDim: true)
        return s.reshaped(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, AddKernel.self, op: "add")
        // Only the shapes: capturing a and b would keep both summands' data until backward.
        let sa = a.shape, sb = b.shape
        let recorded = record(out, "add", [a, b], .add) { g in [g.sumToShape(sa), g.sumToShape(sb)] }
        // A residual sum of two rebuildable maps (BatchNorm outputs, or a block output that is
        // itself such a sum after ReLU) is rebuildable too, so the block's ReLU need not keep it.
        if SavedActivations.chains, sa == sb, let ra = a.recipe, let rb = b.recipe {
            recorded.setRematerialize(Rebuilt(depth: Swift.max(ra.depth, rb.depth) + 1) { Rebuilt.sum(ra, rb) })
        }
        return recorded
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, SubKernel.self, op: "sub")
        let sa = a.shape, sb = b.shape
        return record(out, "sub", [a, b], .sub) { g in [g.sumToShape(sa), (-g).sumToShape(sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, MulKernel.self, op: "mul")
        let ad = a.detach(), bd = b.detach()
        return record(out, "mul", [a, b], .mul) { g in
            [a.requiresGrad ? (g * bd).sumToShape(a.shape) : nil,
             b.requiresGrad ? (g * ad).sumToShape(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, DivKernel.self, op: "div")
        let ad = a.detach(), bd = b.detach()
        return record(out, "div", [a, b], .div) { g in
            [a.requiresGrad ? (g / bd).sumToShape(a.shape) : nil,
             b.requiresGrad ? (-(g * ad) / (bd * bd)).sumToShape(b.shape) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        let out = Kernels.map(a) { -$0 }
        return record(out, "neg", [a], .neg) { g in [-g] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        let out = Kernels.map(a) { $0 + s }
        return record(out, "add_scalar", [a], .addScalar(s)) { g in [g] }
    }

    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }

    public static func - (s: Float, a: Tensor) -> Tensor {
        let out = Kernels.map(a) { s - $0 }
        return record(out, "rsub_scalar", [a], .scalarSub(s)) { g in [-g] }
    }

    public static func * (a: Tensor, s: Float) -> Tensor {
        let out = Kernels.map(a) { $0 * s }
        return record(out, "mul_scalar", [a], .mulScalar(s)) { g in [g * s] }
    }

    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

    public static func / (s: Float, a: Tensor) -> Tensor {
        let out = Kernels.map(a) { s / $0 }
        let ad = a.detach()
        return record(out, "rdiv_scalar", [a], .scalarDiv(s)) { g in [g * Kernels.map(ad) { -s / ($0 * $0) }] }
    }

    /// Elementwise power with a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        let out: Tensor
        if p == 2 { out = Kernels.map(self) { $0 * $0 } }
        else { out = Kernels.map(self) { Foundation_powf($0, p) } }
        let xd = detach()
        return record(out, "pow", [self], .powScalar(p)) { g in
            [g * Kernels.map(xd) { p == 2 ? 2 * $0 : p * Foundation_powf($0, p - 1) }]
        }
    }

    /// Elementwise power with a tensor exponent (broadcasting); d/db uses log(a), so a > 0 there.
    public func pow(_ exponent: Tensor) -> Tensor {
        let out = Kernels.zip(self, exponent, op: "pow") { Foundation_powf($0, $1) }
        let ad = detach(), bd = exponent.detach(), od = out.detach()
        return record(out, "pow", [self, exponent], .pow) { [shape] g in
            [self.requiresGrad
                ? (g * Kernels.zip(ad, bd, op: "pow_backward") { $1 * Foundation_powf($0, $1 - 1) }).sumToShape(shape)
                : nil,
             exponent.requiresGrad ? (g * od * ad.log()).sumToShape(exponent.shape) : nil]
        }
    }

    public func exp() -> Tensor {
        let out = Kernels.map(self) { expf($0) }
        let od = out.detach()
        return record(out, "exp", [self], .exp) { g in [g * od] }
    }

    public func log() -> Tensor {
        let out = Kernels.map(self) { logf($0) }
        let xd = detach()
        return record(out, "log", [self], .log) { g in [g / xd] }
    }

    public func sqrt() -> Tensor {
        let out = Kernels.map(self) { $0.squareRoot() }
        let od = out.detach()
        return record(out, "sqrt", [self], .sqrt) { g in [Kernels.zip(g, od, op: "sqrt_backward") { $0 / (2 * $1) }] }
    }

    public func rsqrt() -> Tensor {
        let out = Kernels.map(self) { 1 / $0.squareRoot() }
        let od = out.detach()
        return record(out, "rsqrt", [self], .rsqrt) { g in
            [Kernels.zip(g, od, op: "rsqrt_backward") { -0.5 * $0 * $1 * $1 * $1 }]
        }
    }

    public func abs() -> Tensor {
        let out = Kernels.map(self) { Swift.abs($0) }
        let xd = detach()
        return record(out, "abs", [self], .abs) { g in
            [Kernels.zip(g, xd, op: "abs_backward") { $1 > 0 ? $0 : ($1 < 0 ? -$0 : 0) }]
        }
    }

    /// Clamps into [min, max]; like PyTorch, the gradient passes where min ≤ x ≤ max.
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        ensure(!(lo > hi), "clamp: min \(lo) is greater than max \(hi)")
        let out = Kernels.map(self) { Swift.min(Swift.max($0, lo), hi) }
        let xd = detach()
        return record(out, "clamp", [self], .clamp(min: lo.isFinite ? lo : nil, max: hi.isFinite ? hi : nil)) { g in
            [Kernels.zip(g, xd, op: "clamp_backward") { ($1 >= lo && $1 <= hi) ? $0 : 0 }]
        }
    }

    /// Elementwise maximum; ties send half the gradient to each side, as PyTorch does.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, op: "maximum") { Swift.max($0, $1) }
        let ad = a.detach(), bd = b.detach()
        return record(out, "maximum", [a, b], .maximum) { g in
            let wa = Kernels.zip(ad, bd, op: "maximum_backward") { $0 > $1 ? 1 : ($0 == $1 ? 0.5 : 0) }
            return [(g * wa).sumToShape(a.shape), (g * (1 - wa)).sumToShape(b.shape)]
        }
    }

    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Kernels.zip(a, b, op: "minimum") { Swift.min($0, $1) }
        let ad = a.detach(), bd = b.detach()
        return record(out, "minimum", [a, b], .minimum) { g in
            let wa = Kernels.zip(ad, bd, op: "minimum_backward") { $0 < $1 ? 1 : ($0 == $1 ? 0.5 : 0) }
            return [(g * wa).sumToShape(a.shape), (g * (1 - wa)).sumToShape(b.shape)]
        }
    }

    /// `condition ? a : b` elementwise (condition nonzero means true), all three broadcast together.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = Shape.broadcast(Shape.broadcast(condition.shape, a.shape, op: "where"), b.shape, op: "where")
        let c = condition.detach().expanded(to: shape)
        let picked = Kernels.zip(c, a.expanded(to: shape).detach(), op: "where") { $0 != 0 ? $1 : 0 }
        let out = Kernels.zip(c, b.expanded(to: shape).detach(), op: "where") { $0 != 0 ? 0 : $1 }
        Kernels.addInPlace(out, picked)
        let sa = a.shape, sb = b.shape
        return record(out, "where", [a, b], nil) { g in
            [Kernels.zip(c, g, op: "where_backward") { $0 != 0 ? $1 : 0 }.sumToShape(sa),
             Kernels.zip(c, g, op: "where_backward") { $0 != 0 ? 0 : $1 }.sumToShape(sb)]
        }
    }

    /// 1 where the comparison holds, else 0; not differentiable.
    public func greater(_ s: Float) -> Tensor { Kernels.map(self) { $0 > s ? 1 : 0 } }
    public func less(_ s: Float) -> Tensor { Kernels.map(self) { $0 < s ? 1 : 0 } }
    public func equal(_ other: Tensor) -> Tensor { Kernels.zip(self, other, op: "equal") { $0 == $1 ? 1 : 0 } }
}

@inline(__always) func Foundation_powf(_ a: Float, _ b: Float) -> Float { powf(a, b) }
