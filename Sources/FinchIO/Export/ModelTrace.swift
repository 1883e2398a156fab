import FinchTensor
import FinchNN

/// An export format for traced models: ONNX (`ONNXExporter`) and Core ML (`CoreMLExporter`). A conforming
/// type turns the recorded forward pass into its format's model, lowering each `TracedOpKind`
/// in one exhaustive switch (see `ONNXLowering`), so a new op is one case per exporter and a new
/// exporter touches no op.
public protocol GraphExporter {
    associatedtype Graph
    func graph(from trace: ModelTrace) throws -> Graph
}

extension GraphExporter {
    /// Records `model`'s eval-mode forward pass for input [N] + `inputShape` and builds the graph.
    public func export(_ model: Module, inputShape chw: [Int], numClasses: Int, graphName: String = "finch") throws -> Graph {
        try graph(from: ModelTrace(recording: model, inputShape: chw, numClasses: numClasses, graphName: graphName))
    }
}

/// A model's eval-mode forward pass as exporters read it. The model runs twice under an
/// `OpTracer`, at batch 1 and 2: the two traces must agree op for op, and an attribute that
/// differs between them (a reshape target) depends on the batch size, which exporters keep dynamic.
public struct ModelTrace {
    /// The ops at batch 1, in the order they ran. They hold their tensors, so the object identities
    /// exporters key names on stay unique while the trace lives.
    public let ops: [TracedOp]
    /// The same ops at batch 2.
    public let opsAtBatch2: [TracedOp]
    /// The batch-1 input and output tensors (the graph's `input` and `logits`).
    public let input: Tensor
    public let output: Tensor
    /// [C, H, W] of one input image.
    public let inputShape: [Int]
    public let numClasses: Int
    public let graphName: String
    /// State-dict names of the model's float tensors by identity: the weights stored by name.
    public let parameterNames: [ObjectIdentifier: String]

    public init(recording model: Module, inputShape chw: [Int], numClasses: Int, graphName: String = "finch") throws {
        ensure(chw.count == 3, "export: input shape is [C, H, W], got \(chw)")
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        func trace(batch: Int) -> (OpTracer, Tensor, Tensor) {
            let tracer = OpTracer()
            let x = Tensor(zeros: [batch] + chw)
            let y = OpTrace.run(tracer) { noGrad { model(x) } }
            return (tracer, x, y)
        }
        let (t1, x1, y1) = trace(batch: 1)
        let (t2, _, _) = trace(batch: 2)
        guard t1.ops.count == t2.ops.count else {
            throw ExportError.unstableTrace("\(t1.ops.count) ops at batch 1, \(t2.ops.count) at batch 2")
        }
        for (a, b) in zip(t1.ops, t2.ops) where a.kind.caseName != b.kind.caseName {
            throw ExportError.unstableTrace("\(a.kind.caseName) vs \(b.kind.caseName)")
        }
        var names: [ObjectIdentifier: String] = [:]
        for (name, value) in model.stateDict() {
            if case .float(let t) = value { names[ObjectIdentifier(t)] = name }
        }
        ops = t1.ops
        opsAtBatch2 = t2.ops
        input = x1
        output = y1
        inputShape = chw
        self.numClasses = numClasses
        self.graphName = graphName
        parameterNames = names
    }
}

extension TracedOpKind {
    /// The case without its attributes ("reshape"), for messages and trace comparison.
    var caseName: String { Mirror(reflecting: self).children.first?.label ?? "\(self)" }
}
