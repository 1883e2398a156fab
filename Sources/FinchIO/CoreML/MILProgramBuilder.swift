import Foundation

typealias MILDataType = CoreML_Specification_MILSpec_DataType
typealias MILValueType = CoreML_Specification_MILSpec_ValueType
typealias MILValue = CoreML_Specification_MILSpec_Value
typealias MILOperation = CoreML_Specification_MILSpec_Operation

/// A value of the program being built, with the element type and shape the op that makes it
/// declares (MIL states every output's type; coremltools checks them against its own inference).
struct MILVar {
    let name: String
    let dtype: MILDataType
    let shape: [Int]
}

/// A constant operand; it becomes a `const` op when used, as coremltools writes them.
enum MILConstant {
    /// Written in the program's float type (float16 programs store their constants as float16).
    case floats([Float], shape: [Int])
    /// Always float32, whatever the program's float type (the input's preprocessing).
    case floats32([Float], shape: [Int])
    case ints([Int], shape: [Int])
    case bools([Bool], shape: [Int])
    case string(String)

    static func scalar(_ v: Float) -> MILConstant { .floats([v], shape: []) }
    static func int(_ v: Int) -> MILConstant { .ints([v], shape: []) }
    static func ints(_ v: [Int]) -> MILConstant { .ints(v, shape: [v.count]) }
    static func bool(_ v: Bool) -> MILConstant { .bools([v], shape: []) }
}

enum MILOperand {
    case value(MILVar)
    case constant(MILConstant)
    /// Several values bound to one input (concat's `values`).
    case values([MILVar])
}

/// Builds the operations of one MIL block and the weight file they read: names every value,
/// writes constants as `const` ops (weights into the blob file), and types every output.
final class MILProgramBuilder {
    /// The type floats compute in (float32 or float16).
    let floatType: MILDataType
    private(set) var operations: [MILOperation] = []
    var blob = MILBlobWriter()
    private var used: [String: Int] = [:]

    init(floatType: MILDataType) {
        self.floatType = floatType
    }

    /// A name not used before in this program, made of [A-Za-z0-9_] (state-dict names' dots become _).
    func uniqueName(_ base: String) -> String {
        var s = String(base.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if s.first.map({ !$0.isLetter }) ?? true { s = "v_" + s }
        let n = used[s, default: 0]
        used[s] = n + 1
        return n == 0 ? s : "\(s)_\(n)"
    }

    static func tensorType(_ dtype: MILDataType, _ shape: [Int]) -> MILValueType {
        var t = CoreML_Specification_MILSpec_TensorType()
        t.dataType = dtype
        t.rank = Int64(shape.count)
        t.dimensions = shape.map { d in
            var dim = CoreML_Specification_MILSpec_Dimension()
            dim.constant.size = UInt64(d)
            return dim
        }
        var v = MILValueType()
        v.tensorType = t
        return v
    }

    static func stringValue(_ s: String) -> MILValue {
        var v = MILValue()
        v.type = tensorType(.string, [])
        var tv = CoreML_Specification_MILSpec_TensorValue()
        tv.strings.values = [s]
        v.immediateValue.tensor = tv
        return v
    }

    private func immediate(_ c: MILConstant) -> (MILValue, MILDataType, [Int]) {
        var tv = CoreML_Specification_MILSpec_TensorValue()
        let dtype: MILDataType, shape: [Int]
        switch c {
        case .floats(let f, let s) where floatType == .float16:
            dtype = .float16; shape = s
            tv.bytes.values = f.map { float16Bits($0).littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
        case .floats(let f, let s), .floats32(let f, let s):
            dtype = .float32; shape = s
            tv.floats.values = f
        case .ints(let v, let s):
            dtype = .int32; shape = s
            tv.ints.values = v.map { Int32(clamping: $0) }
        case .bools(let v, let s):
            dtype = .bool; shape = s
            tv.bools.values = v
        case .string(let s):
            dtype = .string; shape = []
            tv.strings.values = [s]
        }
        var v = MILValue()
        v.type = Self.tensorType(dtype, shape)
        v.immediateValue.tensor = tv
        return (v, dtype, shape)
    }

    private func constOp(name: String, value: MILValue, dtype: MILDataType, shape: [Int]) -> MILVar {
        var op = MILOperation()
        op.type = "const"
        var out = CoreML_Specification_MILSpec_NamedValueType()
        out.name = name
        out.type = Self.tensorType(dtype, shape)
        op.outputs = [out]
        op.attributes = ["val": value, "name": Self.stringValue(name)]
        operations.append(op)
        return MILVar(name: name, dtype: dtype, shape: shape)
    }

    func constant(_ c: MILConstant, name: String) -> MILVar {
        let (v, dtype, shape) = immediate(c)
        return constOp(name: uniqueName(name), value: v, dtype: dtype, shape: shape)
    }

    /// A weight stored in the blob file in the program's float type.
    func weight(_ values: [Float], shape: [Int], name: String) -> MILVar {
        let dtype = floatType
        let offset = blob.append(values, type: dtype == .float16 ? .float16 : .float32)
        var v = MILValue()
        v.type = Self.tensorType(dtype, shape)
        v.blobFileValue.fileName = "@model_path/weights/weight.bin"
        v.blobFileValue.offset = offset
        return constOp(name: uniqueName(name), value: v, dtype: dtype, shape: shape)
    }

    /// Appends `type` reading `inputs`; constants among them become `const` ops named after the op.
    /// The output has `shape` and the program's float type unless `dtype` says otherwise.
    @discardableResult
    func op(_ type: String, _ inputs: [(String, MILOperand)], shape: [Int], dtype: MILDataType? = nil,
            name: String? = nil) -> MILVar {
        let outName = uniqueName(name ?? type)
        var op = MILOperation()
        op.type = type
        for (key, operand) in inputs {
            var arg = CoreML_Specification_MILSpec_Argument()
            let vars: [MILVar]
            switch operand {
            case .value(let v): vars = [v]
            case .values(let vs): vars = vs
            case .constant(let c): vars = [constant(c, name: "\(outName)_\(key)")]
            }
            arg.arguments = vars.map { v in
                var b = CoreML_Specification_MILSpec_Argument.Binding()
                b.name = v.name
                return b
            }
            op.inputs[key] = arg
        }
        var out = CoreML_Specification_MILSpec_NamedValueType()
        out.name = outName
        out.type = Self.tensorType(dtype ?? floatType, shape)
        op.outputs = [out]
        op.attributes = ["name": Self.stringValue(outName)]
        operations.append(op)
        return MILVar(name: outName, dtype: dtype ?? floatType, shape: shape)
    }

    /// `classify`: the top label and the label → probability dictionary, named as coremltools names
    /// a classifier's outputs; the labels are bound inline, as coremltools binds them.
    func classify(_ probabilities: MILVar, labels: [String]) {
        var op = MILOperation()
        op.type = "classify"
        var pb = CoreML_Specification_MILSpec_Argument.Binding()
        pb.name = probabilities.name
        var pa = CoreML_Specification_MILSpec_Argument()
        pa.arguments = [pb]
        var list = MILValue()
        var lt = CoreML_Specification_MILSpec_ListType()
        lt.type = Self.tensorType(.string, [])
        lt.length.constant.size = UInt64(labels.count)
        list.type.listType = lt
        var lv = CoreML_Specification_MILSpec_ListValue()
        lv.values = labels.map(Self.stringValue)
        list.immediateValue.list = lv
        var cb = CoreML_Specification_MILSpec_Argument.Binding()
        cb.value = list
        var ca = CoreML_Specification_MILSpec_Argument()
        ca.arguments = [cb]
        op.inputs = ["probabilities": pa, "classes": ca]
        var label = CoreML_Specification_MILSpec_NamedValueType()
        label.name = "classLabel"
        label.type = Self.tensorType(.string, [])
        var probs = CoreML_Specification_MILSpec_NamedValueType()
        probs.name = "classLabel_probs"
        var dt = CoreML_Specification_MILSpec_DictionaryType()
        dt.keyType = Self.tensorType(.string, [])
        dt.valueType = Self.tensorType(.float64, [])
        probs.type.dictionaryType = dt
        op.outputs = [label, probs]
        op.attributes = ["name": Self.stringValue(uniqueName("classify"))]
        operations.append(op)
    }

    /// Gives the output of the op that made `v` the name `name` (the program's output names).
    func rename(_ v: MILVar, to name: String) -> MILVar {
        guard let i = operations.lastIndex(where: { $0.outputs.first?.name == v.name }) else { return v }
        operations[i].outputs[0].name = name
        operations[i].attributes["name"] = Self.stringValue(name)
        return MILVar(name: name, dtype: v.dtype, shape: v.shape)
    }
}
