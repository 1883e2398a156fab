import Foundation
import SwiftProtobuf
import FinchTensor
import FinchNN

/// Exports a model's eval-mode forward pass as an ONNX graph (opset 17): input `input`
/// float32 [N,3,H,W] with a dynamic batch, output `logits`, weights as initializers named by
/// their state-dict names, preprocessing and class names in `metadata_props`.
///
/// The graph is built from a `ModelTrace` (the forward pass recorded at batch 1 and 2): each
/// traced op becomes the nodes `ONNXLowering` gives it, and reshape targets that differ between
/// the two batches are written as -1 so any batch size runs.
public struct ONNXExporter: GraphExporter {
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

    public func graph(from trace: ModelTrace) throws -> Onnx_ModelProto {
        let chw = trace.inputShape, paramNames = trace.parameterNames
        var g = Onnx_GraphProto()
        g.name = trace.graphName
        var names: [ObjectIdentifier: String] = [ObjectIdentifier(trace.input): "input"]
        var initializers: [String: Onnx_TensorProto] = [:]
        var constants = 0

        func constant(_ dims: [Int], _ fill: (inout Onnx_TensorProto) -> Void) -> String {
            constants += 1
            var p = Onnx_TensorProto()
            p.name = "const_\(constants)"
            p.dims = dims.map(Int64.init)
            fill(&p)
            initializers[p.name] = p
            return p.name
        }
        func floatConstant(_ values: [Float], _ dims: [Int]) -> String {
            constant(dims) {
                $0.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
                $0.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
            }
        }

        // Node and value names carry a running index, one per node (an Identity that only renames
        // takes an index too).
        var index = 0
        for (op, op2) in zip(trace.ops, trace.opsAtBatch2) {
            let specs = try ONNXLowering.nodes(for: op, atBatch2: op2)
            var previous = ""
            for (k, spec) in specs.enumerated() {
                defer { index += 1 }
                let isLast = k == specs.count - 1
                if spec.opType == "Identity", specs.count == 1, case .tensor(let src?)? = spec.inputs.first,
                   let n = names[ObjectIdentifier(src)] {
                    names[ObjectIdentifier(op.output)] = n   // a copy to dense memory: the same value in ONNX
                    continue
                }
                var node = Onnx_NodeProto()
                node.opType = spec.opType
                node.name = "\(spec.opType)_\(index)"
                for operand in spec.inputs {
                    switch operand {
                    case .previous: node.input.append(previous)
                    case .tensor(nil): node.input.append("")
                    case .tensor(let input?):
                        let id = ObjectIdentifier(input)
                        if let n = names[id] { node.input.append(n); continue }
                        if let p = paramNames[id] {
                            if initializers[p] == nil {
                                var w = Onnx_TensorProto()
                                w.name = p
                                w.dims = input.shape.map(Int64.init)
                                w.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
                                w.rawData = input.withContiguousBuffer { Data(buffer: $0) }
                                initializers[p] = w
                            }
                            node.input.append(p)
                            continue
                        }
                        guard input.count <= 4096 else { throw ExportError.untracedTensor(op: spec.opType, shape: input.shape) }
                        node.input.append(floatConstant(input.scalars, input.shape))
                    case .floats(let values, let dims): node.input.append(floatConstant(values, dims))
                    case .int64s(let values, let dims):
                        node.input.append(constant(dims) {
                            $0.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
                            $0.int64Data = values.map(Int64.init)
                        })
                    }
                }
                let outName = isLast && op.output === trace.output ? "logits" : "t\(index)"
                if isLast { names[ObjectIdentifier(op.output)] = outName }
                previous = outName
                node.output = [outName]
                for (name, value) in spec.attributes.sorted(by: { $0.key < $1.key }) {
                    var a = Onnx_AttributeProto()
                    a.name = name
                    switch value {
                    case .int(let v): a.type = .int; a.i = Int64(v)
                    case .ints(let v): a.type = .ints; a.ints = v.map(Int64.init)
                    case .float(let v): a.type = .float; a.f = v
                    case .string(let v): a.type = .string; a.s = Data(v.utf8)
                    }
                    node.attribute.append(a)
                }
                g.node.append(node)
            }
        }
        guard g.node.last?.output == ["logits"] else {
            throw ExportError.unstableTrace("the model's output is not produced by a traced op")
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
        g.output = [valueInfo("logits", ["N", trace.numClasses])]

        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "finch"
        m.producerVersion = FinchVersion.string
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
            throw ExportError.writeFailed(file: url.path, reason: "\(error)")
        }
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        do {
            try data.write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else { throw ExportError.writeFailed(file: url.path, reason: String(cString: strerror(errno))) }
        } catch let e as ExportError {
            unlink(tmp.path)
            throw e
        } catch {
            unlink(tmp.path)
            throw ExportError.writeFailed(file: url.path, reason: error.localizedDescription)
        }
    }
}
