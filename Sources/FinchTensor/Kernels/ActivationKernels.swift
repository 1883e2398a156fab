import CFinchKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Pointwise activation kernels as types, so the generic loops below are specialised per
// activation and the formula is inlined into the loop. (Passing a closure through
// `Parallel.forEach` left one indirect call per element: 20% of an EfficientNet forward.)

protocol UnaryKernel {
    static func apply(_ x: Float) -> Float
    /// dst[i] = apply(src[i]) for i < count; kernels with a SIMD form override it.
    static func run(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int)
}
/// Backward kernels: f(upstream gradient, saved value).
protocol BinaryKernel {
    static func apply(_ g: Float, _ v: Float) -> Float
    static func run(_ g: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int)
}

extension UnaryKernel {
    @inline(__always)
    static func run(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dst[i] = apply(src[i]) }
    }
}

extension BinaryKernel {
    @inline(__always)
    static func run(_ g: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { dst[i] = apply(g[i], v[i]) }
    }
}

enum ReLUKernel: UnaryKernel { @inline(__always) static func apply(_ x: Float) -> Float { x > 0 ? x : 0 } }
enum ReLUBackward: BinaryKernel { @inline(__always) static func apply(_ g: Float, _ y: Float) -> Float { y > 0 ? g : 0 } }
enum ReLU6Kernel: UnaryKernel { @inline(__always) static func apply(_ x: Float) -> Float { Swift.min(Swift.max(x, 0), 6) } }
enum ReLU6Backward: BinaryKernel {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { (x > 0 && x < 6) ? g : 0 }
}
enum HardSigmoidKernel: UnaryKernel {
    @inline(__always) static func apply(_ x: Float) -> Float { Swift.min(Swift.max(x + 3, 0), 6) / 6 }
}
enum HardSigmoidBackward: BinaryKernel {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { (x > -3 && x < 3) ? g / 6 : 0 }
}
enum HardSwishKernel: UnaryKernel {
    @inline(__always) static func apply(_ x: Float) -> Float { x * Swift.min(Swift.max(x + 3, 0), 6) / 6 }
}
enum HardSwishBackward: BinaryKernel {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float { x < -3 ? 0 : (x <= 3 ? g * (x / 3 + 0.5) : g) }
}
// The exp-based kernels run in CFinchKernels, which picks AVX-512 or AVX2 at run time (a
// portable Swift build vectorises only to SSE2). `apply` goes through the same code for one
// element, so a scalar call agrees bit for bit with the block form.
enum SiLUKernel: UnaryKernel {
    @inline(__always) static func apply(_ x: Float) -> Float { oneElement(x, finch_silu) }
    @inline(__always)
    static func run(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        finch_silu(src, dst, count)
    }
}
enum SiLUBackward: BinaryKernel {
    @inline(__always) static func apply(_ g: Float, _ x: Float) -> Float {
        var (g, x, out) = (g, x, Float(0))
        finch_silu_backward(&g, &x, &out, 1)
        return out
    }
    @inline(__always)
    static func run(_ g: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        finch_silu_backward(g, v, dst, count)
    }
}
enum SigmoidKernel: UnaryKernel {
    @inline(__always) static func apply(_ x: Float) -> Float { oneElement(x, finch_sigmoid) }
    @inline(__always)
    static func run(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        finch_sigmoid(src, dst, count)
    }
}

@inline(__always)
private func oneElement(_ x: Float, _ kernel: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void) -> Float {
    var (x, out) = (x, Float(0))
    kernel(&x, &out, 1)
    return out
}
enum SigmoidBackward: BinaryKernel { @inline(__always) static func apply(_ g: Float, _ y: Float) -> Float { g * y * (1 - y) } }
enum AddKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MulKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivKernel: BinaryKernel { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
enum IdentityKernel: UnaryKernel { @inline(__always) static func apply(_ x: Float) -> Float { x } }

/// Activations that inference kernels can fuse into the pass that produces their input.
public enum FusedActivation: Sendable {
    case identity, relu, relu6, hardswish, hardsigmoid, silu, sigmoid

    /// The activation's number in CFinchKernels.
    var kernelCode: Int32 {
        switch self {
        case .identity: 0
        case .relu: 1
        case .relu6: 2
        case .hardswish: 3
        case .hardsigmoid: 4
        case .silu: 5
        case .sigmoid: 6
        }
    }
}

extension Kernels {
    static func map<K: UnaryKernel>(_ x: Tensor, _: K.Type) -> Tensor {
        let xc = x.isContiguous ? x : x.copy()
        let out = Tensor(uninitializedShape: x.shape)
        let src = xc.basePointer, dst = out.basePointer
        withExtendedLifetime(xc) {
            Parallel.forEach(out.count, grain: 1 << 15) { r in
                K.run(src + r.lowerBound, dst + r.lowerBound, r.count)
            }
        }
        return out
    }

    static func zip<K: BinaryKernel>(_ g: Tensor, _ v: Tensor, _: K.Type, op: String) -> Tensor {
        guard g.shape == v.shape && g.isContiguous && v.isContiguous else {
            return zipBroadcast(g, v, op: op, KernelFunction<K>())
        }
        let out = Tensor(uninitializedShape: g.shape)
        let gp = g.basePointer, vp = v.basePointer, dst = out.basePointer
        withExtendedLifetime((g, v)) {
            Parallel.forEach(out.count, grain: 1 << 15) { r in
                K.run(gp + r.lowerBound, vp + r.lowerBound, dst + r.lowerBound, r.count)
            }
        }
        return out
    }

    /// Applies `activation` in place over `count` values (used by fused inference kernels).
    @inline(__always)
    static func activate(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ activation: FusedActivation) {
        switch activation {
        case .identity: return
        case .relu: activate(p, count, ReLUKernel.self)
        case .relu6: activate(p, count, ReLU6Kernel.self)
        case .hardswish: activate(p, count, HardSwishKernel.self)
        case .hardsigmoid: activate(p, count, HardSigmoidKernel.self)
        case .silu: activate(p, count, SiLUKernel.self)
        case .sigmoid: activate(p, count, SigmoidKernel.self)
        }
    }

    /// dst = act((src − mean)·scale + shift): one channel's plane of BatchNorm with its activation,
    /// in CFinchKernels on the AVX-512 and AVX2 paths, else here; each gives this loop's bits on its path.
    @inline(__always)
    static func affineActivation(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int,
                                 mean: Float, scale: Float, shift: Float, _ activation: FusedActivation) {
        if finch_affine_activation(src, dst, count, mean, scale, shift, activation.kernelCode) == 1 { return }
        for k in 0..<count { dst[k] = (src[k] - mean) * scale + shift }
        activate(dst, count, activation)
    }

    /// dst = act(((x − mean)·scale + shift) + r): a residual block's BatchNorm, shortcut and
    /// activation, in CFinchKernels on the AVX-512 and AVX2 paths, else here (same operations). dst
    /// may be x (in place) or r.
    @inline(__always)
    static func residualActivation(_ x: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                                   _ count: Int, mean: Float, scale: Float, shift: Float, _ activation: FusedActivation) {
        if finch_residual_activation(x, r, dst, count, mean, scale, shift, activation.kernelCode) == 1 { return }
        for k in 0..<count { dst[k] = ((x[k] - mean) * scale + shift) + r[k] }
        activate(dst, count, activation)
    }

    /// dst = dL/dz from g = dL/dy and the pre-activation z (overwritten for sigmoid, whose
    /// backward reads its output).
    @inline(__always)
    static func activationBackward(_ g: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>,
                                   _ dst: UnsafeMutablePointer<Float>, _ count: Int, _ activation: FusedActivation) {
        switch activation {
        case .identity: dst.update(from: g, count: count)
        // relu's backward tests its output, y > 0, which is z > 0.
        case .relu: ReLUBackward.run(g, z, dst, count)
        case .relu6: ReLU6Backward.run(g, z, dst, count)
        case .hardswish: HardSwishBackward.run(g, z, dst, count)
        case .hardsigmoid: HardSigmoidBackward.run(g, z, dst, count)
        case .silu: SiLUBackward.run(g, z, dst, count)
        case .sigmoid:
            SigmoidKernel.run(z, z, count)
            SigmoidBackward.run(g, z, dst, count)
        }
    }

    @inline(__always)
    static func activate<K: UnaryKernel>(_ p: UnsafeMutablePointer<Float>, _ count: Int, _: K.Type) {
        K.run(p, p, count)
    }
}

/// Evaluation-mode batch normalisation with its activation in the same pass, unrecorded:
/// act((x − running_mean)·γ/√(running_var + ε) + β). For inference only (no gradient, no trace);
/// the result equals `batchNorm2d(training: false)` followed by the activation, bit for bit.
public func batchNormActivationInference(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor,
                                         runningVar: Tensor, eps: Float, activation: FusedActivation) -> Tensor {
    ensure(x.rank >= 2, "batchNormActivationInference: input must be [N, C, *], got shape \(x.shape)")
    let n = x.shape[0], c = x.shape[1]
    let plane = Shape.count(Array(x.shape[2...]))
    ensure(runningMean.shape == [c] && runningVar.shape == [c],
                 "batchNormActivationInference: running statistics of shape \(runningMean.shape) for input \(x.shape)")
    let xd = x.isContiguous ? x.detach() : x.copy()
    let rm = runningMean.contiguous(), rv = runningVar.contiguous()
    let w = weight?.contiguous(), b = bias?.contiguous()
    var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c), mean = [Float](repeating: 0, count: c)
    for ch in 0..<c {
        let invstd = 1 / (rv.basePointer[ch] + eps).squareRoot()
        scale[ch] = (w?.basePointer[ch] ?? 1) * invstd
        shift[ch] = b?.basePointer[ch] ?? 0
        mean[ch] = rm.basePointer[ch]
    }
    let out = Tensor(uninitializedShape: x.shape)
    let src = xd.basePointer, dst = out.basePointer
    scale.withUnsafeBufferPointer { sc in
        shift.withUnsafeBufferPointer { sh in
            mean.withUnsafeBufferPointer { mu in
                Parallel.forEach(n * c, grain: Swift.max(1, 16384 / Swift.max(plane, 1))) { range in
                    for u in range {
                        let a = sc[u % c], bb = sh[u % c], m = mu[u % c]
                        Kernels.affineActivation(src + u * plane, dst + u * plane, plane, mean: m, scale: a, shift: bb,
                                                 activation)
                    }
                }
            }
        }
    }
    return out
}
