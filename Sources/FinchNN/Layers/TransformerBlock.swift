import FinchTensor

/// Pre-norm transformer block, timm's `vision_transformer.Block` without layer scale:
/// x + attn(norm1(x)), then x + mlp(norm2(x)), each branch under stochastic depth.
public final class TransformerBlock: Module {
    public let norm1: LayerNorm
    public let attn: Attention
    public let norm2: LayerNorm
    public let mlp: Mlp
    let dropPath1: DropPath?, dropPath2: DropPath?

    public init(_ dim: Int, numHeads: Int, mlpRatio: Float = 4, qkvBias: Bool = false, drop: Float = 0,
                attnDrop: Float = 0, dropPath: Float = 0, activation: Activation.Kind = .gelu, normEps: Float = 1e-5) {
        norm1 = LayerNorm(dim, eps: normEps)
        attn = Attention(dim, numHeads: numHeads, qkvBias: qkvBias, attnDrop: attnDrop, projDrop: drop)
        norm2 = LayerNorm(dim, eps: normEps)
        mlp = Mlp(dim, hidden: Int(Float(dim) * mlpRatio), activation: activation, drop: drop)
        dropPath1 = dropPath > 0 ? DropPath(dropPath) : nil
        dropPath2 = dropPath > 0 ? DropPath(dropPath) : nil
        super.init()
        register("norm1", norm1)
        register("attn", attn)
        if let d = dropPath1 { register("drop_path1", d) }
        register("norm2", norm2)
        register("mlp", mlp)
        if let d = dropPath2 { register("drop_path2", d) }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        var a = attn(norm1(x))
        if let dropPath1 { a = dropPath1(a) }
        let h = x + a
        var m = mlp(norm2(h))
        if let dropPath2 { m = dropPath2(m) }
        return h + m
    }
}
