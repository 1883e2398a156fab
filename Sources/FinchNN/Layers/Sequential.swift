import FinchTensor

/// Children named "0", "1", … applied in order (`torch.nn.Sequential`).
public final class Sequential: Module {
    public private(set) var layers: [Module] = []

    public init(_ layers: [Module]) {
        super.init()
        for l in layers { append(l) }
    }

    public func append(_ m: Module) {
        register(String(layers.count), m)
        layers.append(m)
    }

    public var count: Int { layers.count }
    public subscript(_ i: Int) -> Module { layers[i] }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }
}
