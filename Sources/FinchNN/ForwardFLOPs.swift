import FinchTensor

/// The floating-point work of one image's forward pass, counted from the ops the model actually runs
/// (an eval-mode trace at batch 1), so that a measured step time becomes an achieved GFLOP/s
/// comparable with raw sgemm's.
///
/// Convention (the one `finch bench kernels` and sgemm probes use): 2 FLOPs per multiply-add, counted
/// only in convolutions (every group, every kernel tap, at the nominal direct-convolution count, whatever
/// algorithm ran: Winograd does fewer multiplies but the same work) and matrix products (`Linear`,
/// attention's q·kᵀ and weights·v). Bias, BatchNorm, activations, pooling, softmax and the rest are
/// memory-bound and left out, as fvcore and most papers' "FLOPs" do (they report multiply-adds; this is
/// twice their figure). A training step is taken as 3 × forward (backward: one product for the input
/// gradient and one for the weight gradient per forward product), the usual convention.
public struct ForwardFLOPs: Equatable, Sendable {
    /// FLOPs of convolutions, per image.
    public let convolution: Int
    /// FLOPs of matrix products (linear layers, attention), per image.
    public let matmul: Int

    public var total: Int { convolution + matmul }
    /// Forward + backward at 2 × forward.
    public var trainingStep: Int { 3 * total }

    public init(convolution: Int, matmul: Int) {
        self.convolution = convolution
        self.matmul = matmul
    }

    /// Traces `model`'s eval-mode forward pass on one zero image of shape `chw` (the model's training
    /// mode is restored afterwards; it is not otherwise changed).
    public init(counting model: Module, inputShape chw: [Int]) {
        ensure(chw.count == 3 && chw.allSatisfy { $0 > 0 }, "ForwardFLOPs: input shape is [C, H, W], got \(chw)")
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let tracer = OpTracer()
        _ = OpTrace.run(tracer) { noGrad { model(Tensor(zeros: [1] + chw)) } }
        self.init(tracing: tracer.ops, batch: 1)
    }

    /// Counts the products in `ops` (recorded at `batch` images) per image.
    public init(tracing ops: [TracedOp], batch: Int) {
        ensure(batch > 0, "ForwardFLOPs: batch must be positive, got \(batch)")
        var conv = 0, mm = 0
        for op in ops {
            switch op.kind {
            case .conv2d:
                // Each output element sums (Cin/groups)·kh·kw products: the weight's shape past axis 0.
                guard op.inputs.count > 1, let w = op.inputs[1] else { continue }
                conv += 2 * op.output.count * w.shape.dropFirst().reduce(1, *)
            case .matmul:
                // Each output element of [..., M, N] sums K products, K the first operand's last axis.
                guard let a = op.inputs.first ?? nil, let k = a.shape.last else { continue }
                mm += 2 * op.output.count * k
            default:
                continue
            }
        }
        ensure(conv % batch == 0 && mm % batch == 0, "ForwardFLOPs: trace at batch \(batch) is not a whole number of images")
        self.init(convolution: conv / batch, matmul: mm / batch)
    }
}
