import Foundation
import SwiftProtobuf
import FinchTensor
import FinchNN

public enum ONNXExportError: Error, CustomStringConvertible {
    case untracedTensor(op: String, shape: [Int])
    case unstableTrace(String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .untracedTensor(let op, let shape):
            return "ONNX export: op \(op) reads a tensor of shape \(shape) that no traced op produced (an op without an ONNX mapping ran in forward)"
        case .unstableTrace(let m): return "ONNX export: the model's forward pass differs between batch sizes (\(m))"
        case .writeFailed(let f, let r): return "\(f): cannot write (\(r))"
        }
    }
}

/// Exports a model's eval-mode forward pass as an ONNX graph (opset 17): input `input`
/// float32 [N,3,H,W] with a dynamic batch, output `logits`, weights as initializers named by
/// their state-dict names, preprocessing and class names in `metadata_props`.
///
/// The graph is recorded by running the model under an `OpTracer`, twice (batch 1 and 2): the
/// two traces must agree op for op, and reshape targets that differ between them are the
/// batch-dependent dimensions, written as -1 so any batch size runs.
public struct ONNXExporter {
    public var opset: Int64 = 17
    /// Fold each BatchNormalization that follows a convolution into that convolution's weights.
    public var foldBatchNorm = false
    /// Store weights as float16 (with Cast nodes back to float32).
    public var halfPrecisionWeights = false
    public var metadata: [String: String] = [:]

    public init(foldBatchNorm: Bool = false, halfPrecisionWeights: Bool = false, metadata: [String: String] = [:]) {
        self.foldBatchNorm = foldBatchNorm
        self.halfPrecisionWeights = halfPrecisionWeights
        self.metadata = metadata
    }

    public func export(_ model: Module, inputShape chw: [Int], numClasses: Int, graphName: String = "finch") throws -> Onnx_ModelProto {
        ensure(chw.count == 3, "ONNX export: input shape is [C, H, W], got \(chw)")
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
            throw ONNXExportError.unstableTrace("\(t1.ops.count) ops at batch 1, \(t2.ops.count) at batch 2")
        }
        for (a, b) in zip(t1.ops, t2.ops) where a.type != b.type {
            throw ONNXExportError.unstableTrace("\(a.type) vs \(b.type)")
        }

        var paramNames: [ObjectIdentifier: String] = [:]
        var paramValues: [String: Tensor] = [:]
        for (name, value) in model.stateDict() {
            if case .float(let t) = value {
                paramNames[ObjectIdentifier(t)] = name
                paramValues[name] = t
            }
        }

        var g = Onnx_GraphProto()
        g.name = graphName
        var names: [ObjectIdentifier: String] = [ObjectIdentifier(x1): "input"]
        var initializers: [String: Onnx_TensorProto] = [:]
        var constants = 0
        let int64Inputs: [String: Set<Int>] = ["Reshape": [1], "Expand": [1], "Slice": [1, 2, 3, 4], "Pad": [1],
                                              "ReduceSum": [1], "Gather": [1]]

        func initializer(_ name: String, _ t: Tensor, int64: Bool) -> Onnx_TensorProto {
            var p = Onnx_TensorProto()
            p.name = name
            p.dims = t.shape.map(Int64.init)
            if int64 {
                p.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
                p.int64Data = t.scalars.map { Int64($0) }
            } else {
                p.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
                p.rawData = t.withContiguousBuffer { Data(buffer: $0) }
            }
            return p
        }

        for (i, (op, op2)) in zip(t1.ops, t2.ops).enumerated() {
            if op.type == "Identity", let src = op.inputs.first ?? nil, let n = names[ObjectIdentifier(src)] {
                names[ObjectIdentifier(op.output)] = n   // a copy to dense memory: the same value in ONNX
                continue
            }
            var node = Onnx_NodeProto()
            node.opType = op.type
            node.name = "\(op.type)_\(i)"
            for (k, input) in op.inputs.enumerated() {
                guard let input else { node.input.append(""); continue }
                let id = ObjectIdentifier(input)
                if let n = names[id] { node.input.append(n); continue }
                if let p = paramNames[id] {
                    if initializers[p] == nil { initializers[p] = initializer(p, input, int64: false) }
                    node.input.append(p)
                    continue
                }
                guard input.count <= 4096 else { throw ONNXExportError.untracedTensor(op: op.type, shape: input.shape) }
                let isInt = int64Inputs[op.type]?.contains(k) ?? false
                var value = input
                if isInt, op.type == "Reshape" || op.type == "Expand", let other = op2.inputs[k] {
                    // Dimensions that change with the batch size become dynamic.
                    let a = input.scalars, b = other.scalars
                    let fixed = zip(a, b).map { $0 == $1 ? $0 : (op.type == "Reshape" ? -1 : 1) }
                    guard fixed.filter({ $0 == -1 }).count <= 1 else {
                        throw ONNXExportError.unstableTrace("reshape to \(a) has several batch-dependent dimensions")
                    }
                    value = Tensor(fixed, shape: input.shape)
                }
                constants += 1
                let cname = "const_\(constants)"
                initializers[cname] = initializer(cname, value, int64: isInt)
                node.input.append(cname)
            }
            let outName = op.output === y1 ? "logits" : "t\(i)"
            names[ObjectIdentifier(op.output)] = outName
            node.output = [outName]
            for (k, v) in op.attributes.sorted(by: { $0.key < $1.key }) {
                var a = Onnx_AttributeProto()
                a.name = k
                switch v {
                case .int(let x): a.type = .int; a.i = Int64(x)
                case .ints(let x): a.type = .ints; a.ints = x.map(Int64.init)
                case .float(let x): a.type = .float; a.f = x
                case .floats(let x): a.type = .floats; a.floats = x
                case .string(let x): a.type = .string; a.s = Data(x.utf8)
                }
                node.attribute.append(a)
            }
            g.node.append(node)
        }
        guard g.node.last?.output == ["logits"] else {
            throw ONNXExportError.unstableTrace("the model's output is not produced by a traced op")
        }

        if foldBatchNorm { foldBatchNorms(&g, &initializers) }
        g.initializer = initializers.keys.sorted().map { initializers[$0]! }
        if halfPrecisionWeights { convertWeightsToHalf(&g) }

        func valueInfo(_ name: String, _ dims: [Any]) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            v.type.tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            v.type.tensorType.shape.dim = dims.map { d in
                var dim = Onnx_TensorShapeProto.Dimension()
                if let s = d as? String { dim.dimParam = s } else { dim.dimValue = Int64(d as! Int) }
                return dim
            }
            return v
        }
        g.input = [valueInfo("input", ["N"] + chw)]
        g.output = [valueInfo("logits", ["N", numClasses])]

        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "finch"
        m.producerVersion = "0.1"
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.version = opset
        m.opsetImport = [opsetID]
        m.graph = g
        m.metadataProps = metadata.sorted(by: { $0.key < $1.key }).map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        return m
    }

    /// Conv → BatchNormalization pairs become one Conv: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.
    func foldBatchNorms(_ g: inout Onnx_GraphProto, _ inits: inout [String: Onnx_TensorProto]) {
        func floats(_ name: String) -> [Float]? {
            guard let p = inits[name], p.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else { return nil }
            return p.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        func put(_ name: String, _ values: [Float], dims: [Int64]) {
            var p = Onnx_TensorProto()
            p.name = name
            p.dims = dims
            p.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            p.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
            inits[name] = p
        }
        var uses: [String: Int] = [:]
        for n in g.node { for i in n.input { uses[i, default: 0] += 1 } }
        var removed = Set<Int>()
        for (ci, conv) in g.node.enumerated() where conv.opType == "Conv" {
            guard let out = conv.output.first, uses[out] == 1,
                  let bi = g.node.firstIndex(where: { $0.opType == "BatchNormalization" && $0.input.first == out }) else { continue }
            let bn = g.node[bi]
            guard let w = floats(conv.input[1]), let wp = inits[conv.input[1]],
                  let gamma = floats(bn.input[1]), let beta = floats(bn.input[2]),
                  let mean = floats(bn.input[3]), let variance = floats(bn.input[4]),
                  (uses[conv.input[1]] ?? 0) == 1 else { continue }
            let eps = bn.attribute.first { $0.name == "epsilon" }?.f ?? 1e-5
            let cout = gamma.count, per = w.count / cout
            let scale = (0..<cout).map { gamma[$0] / (variance[$0] + eps).squareRoot() }
            var w2 = w
            for o in 0..<cout { for k in 0..<per { w2[o * per + k] *= scale[o] } }
            let b = conv.input.count > 2 && !conv.input[2].isEmpty ? floats(conv.input[2]) ?? [Float](repeating: 0, count: cout) : [Float](repeating: 0, count: cout)
            let b2 = (0..<cout).map { (b[$0] - mean[$0]) * scale[$0] + beta[$0] }
            let wName = conv.input[1] + ".folded", bName = conv.input[1].replacingOccurrences(of: ".weight", with: "") + ".bias.folded"
            put(wName, w2, dims: wp.dims)
            put(bName, b2, dims: [Int64(cout)])
            var newConv = conv
            newConv.input = [conv.input[0], wName, bName]
            newConv.output = bn.output
            g.node[ci] = newConv
            removed.insert(bi)
        }
        g.node = g.node.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        var used = Set<String>()
        for n in g.node { for i in n.input { used.insert(i) } }
        inits = inits.filter { used.contains($0.key) }
    }

    /// Float initializers stored as float16; a Cast restores float32 for the ops.
    func convertWeightsToHalf(_ g: inout Onnx_GraphProto) {
        var casts: [Onnx_NodeProto] = []
        g.initializer = g.initializer.map { p in
            // Only weights: traced constants (Resize scales, shape values, scalars) keep float32,
            // as rounding a scale to float16 would change the sizes it implies.
            guard p.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue), !p.name.hasPrefix("const_") else { return p }
            var h = p
            let values = p.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            h.name = p.name + ".fp16"
            h.dataType = Int32(Onnx_TensorProto.DataType.float16.rawValue)
            h.rawData = values.map(float16Bits).withUnsafeBufferPointer { Data(buffer: $0) }
            var cast = Onnx_NodeProto()
            cast.opType = "Cast"
            cast.name = "Cast_" + p.name
            cast.input = [h.name]
            cast.output = [p.name]
            var to = Onnx_AttributeProto()
            to.name = "to"
            to.type = .int
            to.i = Int64(Onnx_TensorProto.DataType.float.rawValue)
            cast.attribute = [to]
            casts.append(cast)
            return h
        }
        g.node = casts + g.node
    }

    /// Serialises `model` to `url` through a temporary file, so a failure leaves nothing behind.
    public static func write(_ model: Onnx_ModelProto, to url: URL) throws {
        let data: Data
        do { data = try model.serializedData() } catch {
            throw ONNXExportError.writeFailed(file: url.path, reason: "\(error)")
        }
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        do {
            try data.write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else { throw ONNXExportError.writeFailed(file: url.path, reason: String(cString: strerror(errno))) }
        } catch let e as ONNXExportError {
            unlink(tmp.path)
            throw e
        } catch {
            unlink(tmp.path)
            throw ONNXExportError.writeFailed(file: url.path, reason: error.localizedDescription)
        }
    }
}
