import FinchTensor

/// The MIL (Core ML 5 opset, iOS 15) form of each traced op: one place that speaks MIL op and
/// parameter names. Ops MIL lacks become short chains (hard-swish = x·hard-sigmoid(x), rsqrt =
/// 1/√x, log-softmax = (x − max) − log Σ exp(x − max)). Shapes are the traced ones: the program has batch 1.
struct CoreMLLowering {
    let builder: MILProgramBuilder
    /// State-dict names of the model's tensors, by identity: these become blob-file weights.
    let parameterNames: [ObjectIdentifier: String]
    /// Weights to use in place of a traced tensor (folded BatchNorm), by identity of the original.
    var replacements: [ObjectIdentifier: (values: [Float], name: String)] = [:]
    /// Biases for convolutions with a folded BatchNorm, by identity of the convolution's output.
    var foldedBiases: [ObjectIdentifier: (values: [Float], name: String)] = [:]
    private(set) var values: [ObjectIdentifier: MILVar] = [:]
    /// The parameters written so far, by state-dict name → the const's name.
    private(set) var weightNames: [String: String] = [:]

    init(builder: MILProgramBuilder, parameterNames: [ObjectIdentifier: String]) {
        self.builder = builder
        self.parameterNames = parameterNames
    }

    mutating func bind(_ t: Tensor, _ v: MILVar) { values[ObjectIdentifier(t)] = v }
    func value(of t: Tensor) -> MILVar? { values[ObjectIdentifier(t)] }

    /// The module of the last op lowered that read a weight.
    private var lastModule: String?

    func weightModule(of op: TracedOp) -> String? {
        for case let t? in op.inputs {
            if let n = parameterNames[ObjectIdentifier(t)] {
                return n.split(separator: ".").dropLast().joined(separator: ".")
            }
        }
        return nil
    }

    /// Where an op sits, for messages: the module whose weight it reads (the state-dict prefix), else
    /// the module it follows (ops without weights, such as pooling, belong to no named parameter).
    func module(of op: TracedOp) -> String {
        if let m = weightModule(of: op) { return "in module '\(m)'" }
        if let m = lastModule { return "after module '\(m)'" }
        return "before any module with weights"
    }

    /// The MIL value for a traced tensor: a value computed before, a weight, or a small constant.
    mutating func operand(_ t: Tensor, of op: TracedOp) throws -> MILVar {
        let id = ObjectIdentifier(t)
        if let v = values[id] { return v }
        if let r = replacements[id] {
            let v = builder.weight(r.values, shape: t.shape, name: r.name)
            weightNames[r.name] = v.name
            values[id] = v
            return v
        }
        if let p = parameterNames[id] {
            let v = builder.weight(t.scalars, shape: t.shape, name: p)
            weightNames[p] = v.name
            values[id] = v
            return v
        }
        guard t.count <= 4096 else {
            throw ExportError.unsupportedOp(format: "Core ML", op: op.kind.caseName, module: module(of: op),
                                            reason: "it reads a tensor of shape \(t.shape) that no traced op produced (an op without a traced description ran in forward)")
        }
        let v = builder.constant(.floats(t.scalars, shape: t.shape), name: "const")
        values[id] = v
        return v
    }

    /// Lowers `op` and binds its output.
    mutating func lower(_ op: TracedOp) throws {
        defer { if let m = weightModule(of: op) { lastModule = m } }
        let out = op.output.shape
        let foldedBias = foldedBiases[ObjectIdentifier(op.output)]
        var ins: [MILVar] = []
        for case let t? in foldedBias == nil ? op.inputs : Array(op.inputs.prefix(2)) { ins.append(try operand(t, of: op)) }
        if let fb = foldedBias {
            let v = builder.weight(fb.values, shape: [fb.values.count], name: fb.name)
            weightNames[fb.name] = v.name
            ins.append(v)
        }
        let b = builder
        func x() -> MILOperand { .value(ins[0]) }
        func y() -> MILOperand { .value(ins[1]) }
        func s(_ v: Float) -> MILOperand { .constant(.scalar(v)) }
        func ints(_ v: [Int]) -> MILOperand { .constant(.ints(v)) }
        func flag(_ v: Bool) -> MILOperand { .constant(.bool(v)) }
        func str(_ v: String) -> MILOperand { .constant(.string(v)) }
        func unary(_ type: String) -> MILVar { b.op(type, [("x", x())], shape: out) }
        func binary(_ type: String, _ l: MILOperand, _ r: MILOperand) -> MILVar { b.op(type, [("x", l), ("y", r)], shape: out) }
        func unsupported(_ reason: String) -> ExportError {
            .unsupportedOp(format: "Core ML", op: op.kind.caseName, module: module(of: op), reason: reason)
        }
        let inShape = op.inputs.first??.shape ?? []

        let result: MILVar
        switch op.kind {
        case .add: result = binary("add", x(), y())
        case .sub: result = binary("sub", x(), y())
        case .mul: result = binary("mul", x(), y())
        case .div: result = binary("real_div", x(), y())
        case .pow: result = binary("pow", x(), y())
        case .maximum: result = binary("maximum", x(), y())
        case .minimum: result = binary("minimum", x(), y())
        case .neg: result = binary("mul", x(), s(-1))
        case .exp: result = unary("exp")
        case .log: result = unary("log")
        case .sqrt: result = unary("sqrt")
        case .abs: result = unary("abs")
        case .rsqrt:
            // MIL's rsqrt adds an epsilon (1e-12) under the root; 1/√x is what the trace computed.
            let r = b.op("sqrt", [("x", x())], shape: out)
            result = binary("real_div", s(1), .value(r))
        case .addScalar(let v): result = binary("add", x(), s(v))
        case .mulScalar(let v): result = binary("mul", x(), s(v))
        case .scalarSub(let v): result = binary("sub", s(v), x())
        case .scalarDiv(let v): result = binary("real_div", s(v), x())
        case .powScalar(let p): result = binary("pow", x(), s(p))
        case .clamp(let lo?, let hi?): result = b.op("clip", [("x", x()), ("alpha", s(lo)), ("beta", s(hi))], shape: out)
        case .clamp(let lo?, nil): result = binary("maximum", x(), s(lo))
        case .clamp(nil, let hi?): result = binary("minimum", x(), s(hi))
        case .clamp(nil, nil): result = ins[0]
        case .relu: result = unary("relu")
        case .relu6: result = b.op("clip", [("x", x()), ("alpha", s(0)), ("beta", s(6))], shape: out)
        case .leakyRelu(let slope): result = b.op("leaky_relu", [("x", x()), ("alpha", s(slope))], shape: out)
        case .sigmoid: result = unary("sigmoid")
        case .tanh: result = unary("tanh")
        case .hardSigmoid: result = b.op("sigmoid_hard", [("x", x()), ("alpha", s(1.0 / 6.0)), ("beta", s(0.5))], shape: out)
        case .hardSwish:
            let g = b.op("sigmoid_hard", [("x", x()), ("alpha", s(1.0 / 6.0)), ("beta", s(0.5))], shape: out)
            result = binary("mul", x(), .value(g))
        case .silu: result = unary("silu")
        case .gelu(let tanhApproximation):
            result = b.op("gelu", [("x", x()), ("mode", str(tanhApproximation ? "TANH_APPROXIMATION" : "EXACT"))], shape: out)
        case .matmul:
            result = b.op("matmul", [("x", x()), ("y", y()), ("transpose_x", flag(false)), ("transpose_y", flag(false))], shape: out)
        case .conv2d(let stride, let pads, let dilation, let groups):
            // Finch's pads are (top, left, bottom, right); MIL's are (top, bottom, left, right).
            var inputs: [(String, MILOperand)] = [("x", x()), ("weight", y())]
            if ins.count > 2 { inputs.append(("bias", .value(ins[2]))) }
            inputs += [("strides", ints(stride)), ("pad_type", str("custom")), ("pad", ints([pads[0], pads[2], pads[1], pads[3]])),
                       ("dilations", ints(dilation)), ("groups", .constant(.int(groups)))]
            result = b.op("conv", inputs, shape: out)
        case .maxPool2d(let kernel, let stride, let padding, let dilation, let ceilMode):
            guard dilation.allSatisfy({ $0 == 1 }) else { throw unsupported("MIL's max_pool has no dilation (got \(dilation))") }
            result = b.op("max_pool", [("x", x()), ("kernel_sizes", ints(kernel)), ("strides", ints(stride)), ("pad_type", str("custom")),
                                       ("pad", ints([padding[0], padding[0], padding[1], padding[1]])), ("ceil_mode", flag(ceilMode))], shape: out)
        case .avgPool2d(let kernel, let stride, let padding, let ceilMode, let countIncludePad):
            result = b.op("avg_pool", [("x", x()), ("kernel_sizes", ints(kernel)), ("strides", ints(stride)), ("pad_type", str("custom")),
                                       ("pad", ints([padding[0], padding[0], padding[1], padding[1]])),
                                       ("exclude_padding_from_average", flag(!countIncludePad)), ("ceil_mode", flag(ceilMode))], shape: out)
        case .globalAvgPool2d:
            result = b.op("reduce_mean", [("x", x()), ("axes", ints([-2, -1])), ("keep_dims", flag(out.count == inShape.count))], shape: out)
        case .batchNorm(let eps):
            let c = inShape[1]
            func param(_ k: Int, _ fill: Float) throws -> MILOperand {
                if k < op.inputs.count, let t = op.inputs[k] { return .value(try operand(t, of: op)) }
                return .constant(.floats([Float](repeating: fill, count: c), shape: [c]))
            }
            result = b.op("batch_norm", [("x", x()), ("mean", try param(3, 0)), ("variance", try param(4, 1)),
                                         ("gamma", try param(1, 1)), ("beta", try param(2, 0)), ("epsilon", s(eps))], shape: out)
        case .layerNorm(let rank, let eps):
            var inputs: [(String, MILOperand)] = [("x", x()), ("axes", ints(Array(-rank ... -1)))]
            if op.inputs.count > 1, let g = op.inputs[1] { inputs.append(("gamma", .value(try operand(g, of: op)))) }
            if op.inputs.count > 2, let be = op.inputs[2] { inputs.append(("beta", .value(try operand(be, of: op)))) }
            inputs.append(("epsilon", s(eps)))
            result = b.op("layer_norm", inputs, shape: out)
        case .contiguous: result = ins[0]
        case .reshape: result = b.op("reshape", [("x", x()), ("shape", ints(out))], shape: out)
        case .permute(let dims): result = b.op("transpose", [("x", x()), ("perm", ints(dims))], shape: out)
        case .expand:
            var v = ins[0]
            if inShape.count < out.count {
                let padded = [Int](repeating: 1, count: out.count - inShape.count) + inShape
                v = b.op("reshape", [("x", .value(v)), ("shape", ints(padded))], shape: padded)
            }
            let reps = zip(out, v.shape).map { o, i in i == o ? 1 : o }
            result = b.op("tile", [("x", .value(v)), ("reps", ints(reps))], shape: out)
        case .slice(let axis, let start, let end, let step):
            let rank = inShape.count, a = axis < 0 ? axis + rank : axis
            guard step > 0 else { throw unsupported("slice step \(step)") }
            var begin = [Int](repeating: 0, count: rank), stop = inShape, stride = [Int](repeating: 1, count: rank)
            begin[a] = start < 0 ? max(0, start + inShape[a]) : min(start, inShape[a])
            stop[a] = end < 0 ? max(0, end + inShape[a]) : min(end, inShape[a])
            stride[a] = step
            result = b.op("slice_by_index", [("x", x()), ("begin", ints(begin)), ("end", ints(stop)), ("stride", ints(stride))], shape: out)
        case .concat(let axis):
            result = b.op("concat", [("values", .values(ins)), ("axis", .constant(.int(axis))), ("interleave", flag(false))], shape: out)
        case .pad(let before, let after, let value):
            let pads = zip(before, after).flatMap { [$0, $1] }
            result = b.op("pad", [("x", x()), ("pad", ints(pads)), ("mode", str("constant")), ("constant_val", s(value))], shape: out)
        case .sum(let axes, let keepDims), .mean(let axes, let keepDims), .amax(let axes, let keepDims):
            let type = ["sum": "reduce_sum", "mean": "reduce_mean", "amax": "reduce_max"][op.kind.caseName] ?? "reduce_sum"
            let all = axes.isEmpty ? Array(0..<inShape.count) : axes
            result = b.op(type, [("x", x()), ("axes", ints(all)), ("keep_dims", flag(keepDims))], shape: out)
        case .softmax(let axis): result = b.op("softmax", [("x", x()), ("axis", .constant(.int(axis)))], shape: out)
        case .logSoftmax(let axis):
            // (x − max) − log Σ exp(x − max): exp never overflows, in float16 least of all.
            var kept = out
            kept[axis < 0 ? axis + out.count : axis] = 1
            let m = b.op("reduce_max", [("x", x()), ("axes", ints([axis])), ("keep_dims", flag(true))], shape: kept)
            let shifted = binary("sub", x(), .value(m))
            let e = b.op("exp", [("x", .value(shifted))], shape: out)
            let sum = b.op("reduce_sum", [("x", .value(e)), ("axes", ints([axis])), ("keep_dims", flag(true))], shape: kept)
            let lse = b.op("log", [("x", .value(sum))], shape: kept)
            result = binary("sub", .value(shifted), .value(lse))
        case .indexSelect(let axis, let indices):
            result = b.op("gather", [("x", x()), ("indices", ints(indices)), ("axis", .constant(.int(axis)))], shape: out)
        case .resizeBilinear(let height, let width):
            // UNALIGN_CORNERS maps output i to input (i + 0.5)·in/out − 0.5, PyTorch's align_corners=False.
            result = b.op("resize_bilinear", [("x", x()), ("target_size_height", .constant(.int(height))),
                                              ("target_size_width", .constant(.int(width))), ("sampling_mode", str("UNALIGN_CORNERS"))], shape: out)
        }
        bind(op.output, result)
    }
}
