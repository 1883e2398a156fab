// 2-D convolution with PyTorch semantics (`torch.nn.functional.conv2d`), plus explicit
// per-side padding for TensorFlow-style "SAME" models.
//
// Four kernels sit behind one entry point, chosen by geometry:
//   • depthwise (groups == Cin == Cout): a direct kernel, see DepthwiseConv.swift;
//   • pointwise (1×1, stride 1, no padding) on large planes: one GEMM per sample, no im2col;
//   • 3×3 stride 1 with enough channels: Winograd F(4×4, 3×3) or F(2×2, 3×3), see WinogradConv.swift;
//   • everything else: im2col over a chunk of the batch and one GEMM per group, see ConvKernels.swift.

/// Zero padding per side of the two spatial axes.
///
/// PyTorch's `padding=(ph, pw)` is `Padding2d(ph, pw)`. TensorFlow "SAME" padding, which puts
/// the odd pixel at the bottom/right, is `Padding2d.tfSame(...)` (or call `conv2dSame`).
/// The convolution kernels read the padding as virtual zeros, so no padded copy of the input is made.
public struct Padding2d: Equatable, Sendable, CustomStringConvertible {
    public var top: Int
    public var bottom: Int
    public var left: Int
    public var right: Int

    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top
        self.bottom = bottom
        self.left = left
        self.right = right
    }

    /// Symmetric padding: `h` above and below, `w` left and right.
    public init(_ h: Int, _ w: Int) {
        self.init(top: h, bottom: h, left: w, right: w)
    }

    public static let zero = Padding2d(0, 0)

    /// TensorFlow "SAME" padding as timm's `pad_same`: the output has ceil(size / stride) positions,
    /// total = max((ceil(size/s) − 1)·s + (k − 1)·d + 1 − size, 0), split total/2 before, the rest after.
    public static func tfSame(inputSize: (Int, Int), kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                              dilation: (Int, Int) = (1, 1)) -> Padding2d {
        func split(_ n: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
            ensure(n >= 0 && k >= 1 && s >= 1 && d >= 1,
                         "tfSame: invalid size \(n), kernel \(k), stride \(s), dilation \(d)")
            let total = Swift.max(((n + s - 1) / s - 1) * s + (k - 1) * d + 1 - n, 0)
            return (total / 2, total - total / 2)
        }
        let (t, b) = split(inputSize.0, kernelSize.0, stride.0, dilation.0)
        let (l, r) = split(inputSize.1, kernelSize.1, stride.1, dilation.1)
        return Padding2d(top: t, bottom: b, left: l, right: r)
    }

    public var description: String { "(top: \(top), bottom: \(bottom), left: \(left), right: \(right))" }
}

/// Sizes of one convolution (or pooling) problem, checked once and shared by every kernel.
///
/// The products below are computed once, with overflow checks, together with the element counts
/// of input, weight and output: an offset inside one of those tensors then fits in an Int, which
/// lets kernels index their inner loops with wrapping `&*` and `&+` instead of checking each step.
struct ConvGeometry {
    let n: Int, c: Int, h: Int, w: Int
    let cout: Int, kh: Int, kw: Int
    let sh: Int, sw: Int
    /// Padding before the data; padding after only enters through the output size.
    let pt: Int, pl: Int
    let dh: Int, dw: Int
    let groups: Int
    let ho: Int, wo: Int

    let cg: Int
    let coutg: Int
    let khw: Int
    /// Rows of one group's column matrix (= columns of its weight matrix).
    let kg: Int
    let hw: Int
    let inPlane: Int

    var isDepthwise: Bool { groups == c && cout == c }
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && ho == h && wo == w }

    init(input x: [Int], weight wt: [Int], stride: (Int, Int), padding p: Padding2d,
         dilation: (Int, Int), groups: Int, op: String, outputSize: (Int, Int)? = nil) {
        ensure(x.count == 4, "\(op): input must be [N, C, H, W], got shape \(x)")
        ensure(wt.count == 4, "\(op): weight must be [Cout, Cin/groups, kh, kw], got shape \(wt)")
        ensure(groups >= 1, "\(op): groups must be positive, got \(groups)")
        ensure(x[1] % groups == 0 && wt[0] % groups == 0,
                     "\(op): groups \(groups) must divide input channels \(x[1]) and output channels \(wt[0]) " +
                     "(input \(x), weight \(wt))")
        ensure(wt[1] * groups == x[1],
                     "\(op): weight \(wt) expects \(wt[1] * groups) input channels with groups \(groups), " +
                     "but input \(x) has \(x[1])")
        ensure(stride.0 >= 1 && stride.1 >= 1, "\(op): stride \(stride) must be positive")
        ensure(dilation.0 >= 1 && dilation.1 >= 1, "\(op): dilation \(dilation) must be positive")
        ensure(p.top >= 0 && p.bottom >= 0 && p.left >= 0 && p.right >= 0,
                     "\(op): negative padding \(p)")
        ensure(wt[2] >= 1 && wt[3] >= 1, "\(op): empty kernel in weight \(wt)")
        ensure(x.allSatisfy { $0 >= 0 } && wt[0] >= 0, "\(op): negative size in input \(x) or weight \(wt)")
        n = x[0]; c = x[1]; h = x[2]; w = x[3]
        cout = wt[0]; kh = wt[2]; kw = wt[3]
        sh = stride.0; sw = stride.1
        pt = p.top; pl = p.left
        dh = dilation.0; dw = dilation.1
        self.groups = groups
        if let outputSize {
            // Pooling decides its own output size (ceil mode); the kernels only need it to be given.
            ensure(outputSize.0 >= 0 && outputSize.1 >= 0, "\(op): negative output size \(outputSize)")
            (ho, wo) = outputSize
        } else {
            let spanH = h + p.top + p.bottom - dh * (kh - 1) - 1
            let spanW = w + p.left + p.right - dw * (kw - 1) - 1
            ensure(spanH >= 0 && spanW >= 0,
                         "\(op): input \(x) with padding \(p) is smaller than the dilated kernel of weight \(wt) " +
                         "(dilation \(dilation))")
            ho = spanH / sh + 1
            wo = spanW / sw + 1
        }
        cg = c / groups
        coutg = cout / groups
        khw = kh * kw
        kg = cg * khw
        hw = ho * wo
        inPlane = h * w
        // Checked products: they trap here, once, rather than wrap inside a kernel.
        _ = n * c * inPlane
        _ = n * cout * hw
        _ = cout * kg
    }

    /// Output positions o in lo..<hi whose tap t reads a real (non-padding) input index o·s − p + t·d.
    @inline(__always)
    static func validRange(tap t: Int, size: Int, outSize: Int, stride s: Int, pad p: Int, dilation d: Int) -> Range<Int> {
        let lo = Swift.min(outSize, Swift.max(0, ceilDiv(p - t * d, s)))
        let hi = Swift.min(outSize, Swift.max(lo, ceilDiv(size + p - t * d, s)))
        return lo..<hi
    }

    var rowRanges: [Range<Int>] {
        (0..<kh).map { ConvGeometry.validRange(tap: $0, size: h, outSize: ho, stride: sh, pad: pt, dilation: dh) }
    }

    var colRanges: [Range<Int>] {
        (0..<kw).map { ConvGeometry.validRange(tap: $0, size: w, outSize: wo, stride: sw, pad: pl, dilation: dw) }
    }
}

/// ⌈a / b⌉ for b > 0 and any sign of a.
@inline(__always)
func ceilDiv(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? (a + b - 1) / b : -((-a) / b)
}

/// 2-D convolution, `torch.nn.functional.conv2d`: x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw],
/// bias [Cout]; output [N, Cout, Ho, Wo] with Ho = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    conv2d(x, weight: weight, bias: bias, stride: stride, padding: Padding2d(padding.0, padding.1),
           dilation: dilation, groups: groups)
}

/// Convolution as timm's `Conv2dSame` / TensorFlow `padding="SAME"`: the padding is computed from
/// the input size on each call and may be larger at the bottom/right.
public func conv2dSame(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                       dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    ensure(x.rank == 4 && weight.rank == 4,
                 "conv2dSame: input \(x.shape) and weight \(weight.shape) must both be rank 4")
    let pad = Padding2d.tfSame(inputSize: (x.shape[2], x.shape[3]), kernelSize: (weight.shape[2], weight.shape[3]),
                               stride: stride, dilation: dilation)
    return conv2d(x, weight: weight, bias: bias, stride: stride, padding: pad, dilation: dilation, groups: groups)
}

/// 2-D convolution with explicit, possibly asymmetric, zero padding per side.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: Padding2d, dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding,
                         dilation: dilation, groups: groups, op: "conv2d")
    if let bias {
        ensure(bias.shape == [g.cout],
                     "conv2d: bias of shape \(bias.shape) for weight \(weight.shape) (expected [\(g.cout)])")
    }
    // Dense, unrecorded data for the kernels; the tape still sees the caller's tensors.
    let xd = x.isContiguous ? x.detach() : x.copy()
    let wd = weight.isContiguous ? weight.detach() : weight.copy()
    let bd = bias.map { $0.isContiguous ? $0.detach() : $0.copy() }

    let out = Tensor(uninitializedShape: [g.n, g.cout, g.ho, g.wo])
    ConvKernels.forward(x: xd.basePointer, weight: wd.basePointer, bias: bd?.basePointer, out: out.basePointer, g)

    let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad ?? false
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let savedX = SavedTensor(x, dense: xd), inShape = xd.shape
    return record(out, "conv2d", inputs,
                  .conv2d(stride: [stride.0, stride.1], pads: [padding.top, padding.left, padding.bottom, padding.right],
                          dilation: [dilation.0, dilation.1], groups: groups),
                  operands: [x, weight, bias]) { grad in
        let dy = grad.isContiguous ? grad : grad.copy()
        let dx = needX ? Tensor(uninitializedShape: inShape) : nil
        let dw = needW ? Tensor(uninitializedShape: wd.shape) : nil
        let xv = savedX.materialize()
        withExtendedLifetime((dy, xv)) {
            ConvKernels.backward(dy: dy.basePointer, x: xv.basePointer, weight: wd.basePointer,
                                 dx: dx?.basePointer, dw: dw?.basePointer, g)
        }
        var grads: [Tensor?] = [dx, dw]
        if bd != nil {
            grads.append(needB ? ConvKernels.channelSums(dy, n: g.n, c: g.cout, plane: g.hw) : nil)
        }
        return grads
    }
}
