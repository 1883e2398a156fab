import FinchTensor

/// Multi-head self-attention with a fused qkv projection, as timm's `vision_transformer.Attention`
/// (names `qkv`, `proj`): softmax(q·kᵀ/√d)·v per head, heads concatenated, then projected.
public final class Attention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let numHeads: Int
    public let headDim: Int
    let attnDrop: Dropout
    let projDrop: Dropout

    public init(_ dim: Int, numHeads: Int = 8, qkvBias: Bool = false, attnDrop: Float = 0, projDrop: Float = 0) {
        ensure(dim % numHeads == 0, "Attention: dim \(dim) must be divisible by num_heads \(numHeads)")
        self.numHeads = numHeads
        headDim = dim / numHeads
        qkv = Linear(dim, dim * 3, bias: qkvBias)
        proj = Linear(dim, dim)
        self.attnDrop = Dropout(attnDrop)
        self.projDrop = Dropout(projDrop)
        super.init()
        register("qkv", qkv)
        register("attn_drop", self.attnDrop)
        register("proj", proj)
        register("proj_drop", self.projDrop)
    }

    /// x: [B, N, C] tokens.
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        ensure(x.rank == 3, "Attention: input must be [B, N, C], got shape \(x.shape)")
        let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        let projected = qkv(x)
        // One kernel per sequence and head where the kernels have one; dropout on the weights needs
        // the weights as a tensor, and exporters the composition below.
        if !(attnDrop.isTraining && attnDrop.p > 0), let heads = fusedSelfAttention(projected, heads: numHeads) {
            return projDrop(proj(heads))
        }
        // [B, N, 3, heads, d] → [3, B, heads, N, d]: q, k and v are strided views, no copies.
        let parts = projected.reshaped([b, n, 3, numHeads, headDim]).permuted(2, 0, 3, 1, 4)
        let q = parts.narrowed(axis: 0, start: 0, length: 1).squeezed(axis: 0)
        let k = parts.narrowed(axis: 0, start: 1, length: 1).squeezed(axis: 0)
        let v = parts.narrowed(axis: 0, start: 2, length: 1).squeezed(axis: 0)
        let scale = 1 / Float(headDim).squareRoot()
        let weights = attnDrop((q * scale).matmul(k.transposed()).softmax(axis: -1))
        let heads = weights.matmul(v).transposed(1, 2).reshaped([b, n, c])
        return projDrop(proj(heads))
    }
}
