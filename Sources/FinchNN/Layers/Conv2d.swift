import FinchTensor

/// 2-D convolution with `torch.nn.Conv2d`'s weight layout [out, in/groups, kh, kw].
/// `.same` is TensorFlow's "SAME" padding computed from each input's size (timm's
/// `Conv2dSame`, used by the `tf_` EfficientNets): asymmetric when the total is odd.
public final class Conv2d: Module {
    public enum Padding: Equatable, Sendable {
        case explicit(Int, Int)
        case same
    }

    public let weight: Tensor
    public let bias: Tensor?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: (Int, Int), stride: (Int, Int), dilation: (Int, Int)
    public let padding: Padding
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Padding? = nil, dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        ensure(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: groups \(groups) must divide in \(inChannels) and out \(outChannels) channels")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride, stride)
        self.dilation = (dilation, dilation)
        // timm's default symmetric padding: ((stride - 1) + dilation·(k - 1)) / 2.
        let p = ((stride - 1) + dilation * (kernelSize - 1)) / 2
        self.padding = padding ?? .explicit(p, p)
        self.groups = groups
        weight = Tensor(zeros: [outChannels, inChannels / groups, kernelSize, kernelSize])
        self.bias = bias ? Tensor(zeros: [outChannels]) : nil
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        switch padding {
        case .explicit(let ph, let pw):
            return conv2d(x, weight: weight, bias: bias, stride: stride, padding: (ph, pw),
                          dilation: dilation, groups: groups)
        case .same:
            return conv2dSame(x, weight: weight, bias: bias, stride: stride, dilation: dilation, groups: groups)
        }
    }

    /// The padding this layer applies to an input of x's size (TF "same" depends on it).
    func padding2d(for x: Tensor) -> Padding2d {
        switch padding {
        case .explicit(let ph, let pw):
            return Padding2d(ph, pw)
        case .same:
            return Padding2d.tfSame(inputSize: (x.shape[2], x.shape[3]), kernelSize: kernelSize, stride: stride,
                                    dilation: dilation)
        }
    }

    public func resetParameters(using rng: inout RandomGenerator) {
        Init.pytorchDefault(weight: weight, bias: bias, using: &rng)
    }
}
