import FinchTensor

/// An input of an ONNX node before it has a name.
enum ONNXOperand {
    /// A tensor the trace saw: a graph value, a weight, or a small tensor the op made (a constant);
    /// nil is an optional input left out ("").
    case tensor(Tensor?)
    /// The output of the node before this one in the same lowering.
    case previous
    case int64s([Int], dims: [Int])
    case floats([Float], dims: [Int])

    static func scalar(_ value: Float) -> ONNXOperand { .floats([value], dims: []) }
}

enum ONNXAttribute {
    case int(Int)
    case ints([Int])
    case float(Float)
    case string(String)
}

/// One ONNX node to be written: operator, inputs, attributes. Its output is named by the exporter.
struct ONNXNodeSpec {
    let opType: String
    let inputs: [ONNXOperand]
    var attributes: [String: ONNXAttribute] = [:]
}

/// The ONNX (opset 17) form of each traced op: one place that speaks ONNX operator names,
/// attribute names and constant-input conventions. Ops ONNX 17 lacks (GELU, SiLU, rsqrt) become
/// chains of nodes.
enum ONNXLowering {
    static func nodes(for op: TracedOp, atBatch2 op2: TracedOp) throws -> [ONNXNodeSpec] {
        let ins = op.inputs.map(ONNXOperand.tensor)
        func node(_ type: String, _ inputs: [ONNXOperand] = ins, _ attributes: [String: ONNXAttribute] = [:]) -> [ONNXNodeSpec] {
            [ONNXNodeSpec(opType: type, inputs: inputs, attributes: attributes)]
        }
        func keep(_ b: Bool) -> ONNXAttribute { .int(b ? 1 : 0) }
        let x = ins.first ?? .tensor(nil)
        switch op.kind {
        case .add: return node("Add")
        case .sub: return node("Sub")
        case .mul: return node("Mul")
        case .div: return node("Div")
        case .pow: return node("Pow")
        case .maximum: return node("Max")
        case .minimum: return node("Min")
        case .neg: return node("Neg")
        case .exp: return node("Exp")
        case .log: return node("Log")
        case .sqrt: return node("Sqrt")
        case .abs: return node("Abs")
        case .rsqrt: return node("Sqrt") + node("Reciprocal", [.previous])
        case .addScalar(let s): return node("Add", [x, .scalar(s)])
        case .mulScalar(let s): return node("Mul", [x, .scalar(s)])
        case .scalarSub(let s): return node("Sub", [.scalar(s), x])
        case .scalarDiv(let s): return node("Div", [.scalar(s), x])
        case .powScalar(let p): return node("Pow", [x, .scalar(p)])
        case .clamp(let lo, let hi): return node("Clip", [x, lo.map(ONNXOperand.scalar) ?? .tensor(nil), hi.map(ONNXOperand.scalar) ?? .tensor(nil)])
        case .relu: return node("Relu")
        case .relu6: return node("Clip", [x, .scalar(0), .scalar(6)])
        case .leakyRelu(let slope): return node("LeakyRelu", ins, ["alpha": .float(slope)])
        case .sigmoid: return node("Sigmoid")
        case .tanh: return node("Tanh")
        case .hardSigmoid: return node("HardSigmoid", ins, ["alpha": .float(1.0 / 6.0), "beta": .float(0.5)])
        case .hardSwish: return node("HardSwish")
        case .silu: return node("Sigmoid") + node("Mul", [x, .previous])
        case .gelu(tanhApproximation: false):
            // x·Φ(x) = 0.5·x·(1 + erf(x/√2))
            return node("Div", [x, .scalar(1.4142135623730951)]) + node("Erf", [.previous]) + node("Add", [.previous, .scalar(1)])
                + node("Mul", [.previous, x]) + node("Mul", [.previous, .scalar(0.5)])
        case .gelu(tanhApproximation: true):
            // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            return node("Mul", [x, x]) + node("Mul", [.previous, x]) + node("Mul", [.previous, .scalar(0.044715)])
                + node("Add", [.previous, x]) + node("Mul", [.previous, .scalar(0.79788456080286536)]) + node("Tanh", [.previous])
                + node("Add", [.previous, .scalar(1)]) + node("Mul", [.previous, x]) + node("Mul", [.previous, .scalar(0.5)])
        case .matmul: return node("MatMul")
        case .conv2d(let stride, let pads, let dilation, let groups):
            let w = op.inputs[1]!.shape
            return node("Conv", ins, ["kernel_shape": .ints([w[2], w[3]]), "strides": .ints(stride), "pads": .ints(pads),
                                      "dilations": .ints(dilation), "group": .int(groups)])
        case .maxPool2d(let kernel, let stride, let padding, let dilation, let ceilMode):
            return node("MaxPool", ins, ["kernel_shape": .ints(kernel), "strides": .ints(stride), "pads": .ints(padding + padding),
                                         "dilations": .ints(dilation), "ceil_mode": keep(ceilMode)])
        case .avgPool2d(let kernel, let stride, let padding, let ceilMode, let countIncludePad):
            return node("AveragePool", ins, ["kernel_shape": .ints(kernel), "strides": .ints(stride), "pads": .ints(padding + padding),
                                             "ceil_mode": keep(ceilMode), "count_include_pad": keep(countIncludePad)])
        case .globalAvgPool2d: return node("GlobalAveragePool")
        case .batchNorm(let eps):
            let c = [op.inputs[0]!.shape[1]]
            let defaults: [Float] = [1, 0, 0, 1]   // weight, bias, running mean, running variance
            let params = (1...4).map { k in k < ins.count && op.inputs[k] != nil ? ins[k] : filled(defaults[k - 1], c) }
            return node("BatchNormalization", [x] + params, ["epsilon": .float(eps)])
        case .layerNorm(let rank, let eps):
            let shape = Array(op.inputs[0]!.shape.suffix(rank))
            let params = (1...2).map { k in k < ins.count && op.inputs[k] != nil ? ins[k] : filled(k == 1 ? 1 : 0, shape) }
            return node("LayerNormalization", [x] + params, ["axis": .int(-rank), "epsilon": .float(eps)])
        case .contiguous: return node("Identity")
        case .reshape(let shape), .expand(let shape):
            // Dimensions that change with the batch size become dynamic: -1 for Reshape, 1 for Expand.
            let isReshape = op.kind.caseName == "reshape"
            var other = shape
            if case .reshape(let s2) = op2.kind { other = s2 } else if case .expand(let s2) = op2.kind { other = s2 }
            let fixed = zip(shape, other).map { $0 == $1 ? $0 : (isReshape ? -1 : 1) }
            guard fixed.filter({ $0 == -1 }).count <= 1 else {
                throw ExportError.unstableTrace("reshape to \(shape) has several batch-dependent dimensions")
            }
            return node(isReshape ? "Reshape" : "Expand", [x, .int64s(fixed, dims: [fixed.count])])
        case .permute(let dims): return node("Transpose", ins, ["perm": .ints(dims)])
        case .slice(let axis, let start, let end, let step):
            return node("Slice", [x] + [start, end, axis, step].map { .int64s([$0], dims: [1]) })
        case .concat(let axis): return node("Concat", ins, ["axis": .int(axis)])
        case .pad(let before, let after, let value):
            let pads = before + after
            return node("Pad", [x, .int64s(pads, dims: [pads.count]), .scalar(value)])
        case .sum(let axes, let keepDims):
            return node("ReduceSum", [x, .int64s(axes, dims: [axes.count])], ["keepdims": keep(keepDims)])
        case .mean(let axes, let keepDims): return node("ReduceMean", ins, ["axes": .ints(axes), "keepdims": keep(keepDims)])
        case .amax(let axes, let keepDims): return node("ReduceMax", ins, ["axes": .ints(axes), "keepdims": keep(keepDims)])
        case .softmax(let axis): return node("Softmax", ins, ["axis": .int(axis)])
        case .logSoftmax(let axis): return node("LogSoftmax", ins, ["axis": .int(axis)])
        case .indexSelect(let axis, let indices):
            return node("Gather", [x, .int64s(indices, dims: [indices.count])], ["axis": .int(axis)])
        case .resizeBilinear(let ho, let wo):
            let s = op.inputs[0]!.shape
            return node("Resize", [x, .tensor(nil), .floats([1, 1, resizeScale(ho, s[2]), resizeScale(wo, s[3])], dims: [4])],
                        ["mode": .string("linear"), "coordinate_transformation_mode": .string("pytorch_half_pixel")])
        }
    }

    static func filled(_ value: Float, _ shape: [Int]) -> ONNXOperand {
        .floats([Float](repeating: value, count: shape.reduce(1, *)), dims: shape)
    }

    /// ONNX sizes a resize output as ⌊input·scale⌋: a scale that rounds below out/in is nudged up by
    /// one ulp (the coordinate mapping moves by ~1e-7 of a pixel).
    static func resizeScale(_ output: Int, _ input: Int) -> Float {
        let s = Float(output) / Float(input)
        return Float(input) * s < Float(output) || Double(input) * Double(s) < Double(output) ? s.nextUp : s
    }
}
