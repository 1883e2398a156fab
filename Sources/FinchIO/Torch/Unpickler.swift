import Foundation

/// A value on the pickle stack. Containers and calls live in the unpickler's object table and
/// are referred to by index, so a value never nests inside another: 100,000-deep nesting is a
/// chain of indices (no recursion to build, walk or free it), and an object referenced many
/// times through the memo is stored once, as in Python.
enum PickleValue: Equatable {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes(Data)
    /// Boxed, so that the common cases keep every stack slot and container element at 24 bytes.
    indirect case global(module: String, name: String)
    /// Index into `PickleGraph.objects`.
    case object(Int)

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var int: Int? { if case .int(let v) = self { return v }; return nil }
}

/// Dict entries in insertion order (OrderedDict and dict alike). String and integer keys are
/// indexed, so a later value replaces an earlier one in constant time, as in a dict; other keys
/// (tuples, floats) are kept side by side since nothing here looks them up.
struct PickleDict {
    private(set) var pairs: [(key: PickleValue, value: PickleValue)] = []
    private var stringKeys: [String: Int] = [:]
    private var intKeys: [Int: Int] = [:]

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        let existing: Int?
        switch key {
        case .string(let s): existing = stringKeys[s]
        case .int(let i): existing = intKeys[i]
        default: existing = nil
        }
        if let existing { pairs[existing].value = value; return }
        switch key {
        case .string(let s): stringKeys[s] = pairs.count
        case .int(let i): intKeys[i] = pairs.count
        default: break
        }
        pairs.append((key, value))
    }

    subscript(key: String) -> PickleValue? { stringKeys[key].map { pairs[$0].value } }
}

/// Containers and recorded calls, mutable in place while the pickle runs (APPEND, SETITEMS and
/// BUILD act on the object itself, so every memo reference sees the change, as in Python).
enum PickleObject {
    case tuple([PickleValue])
    case list([PickleValue])
    case dict(PickleDict)
    /// `callable(*args)` recorded, not performed; `state` from BUILD. Boxed, so the object table
    /// costs 32 bytes an entry whatever the pickle builds.
    indirect case call(PickleValue, [PickleValue], state: PickleValue?)
    /// A persistent id (torch's storages), resolved by the caller.
    case persistent(PickleValue)
}

/// What a pickle built: its root value and the table of objects values refer to. The table may
/// hold cycles and shared objects; walkers must bound their own work.
struct PickleGraph {
    let root: PickleValue
    let objects: [PickleObject]

    func object(_ v: PickleValue) -> PickleObject? {
        if case .object(let i) = v { return objects[i] }
        return nil
    }
    /// The elements of a tuple or list.
    func items(_ v: PickleValue) -> [PickleValue]? {
        switch object(v) { case .tuple(let xs)?, .list(let xs)?: return xs; default: return nil }
    }
    func dict(_ v: PickleValue) -> PickleDict? {
        if case .dict(let d)? = object(v) { return d }
        return nil
    }
}

/// A pickle virtual machine for protocols 2–5 without the opcodes that call into Python: GLOBAL
/// and REDUCE build inert `.global` / `.call` values, so reading a file cannot run its code.
///
/// Hostile input is expected: every length is checked against the bytes left, the work is
/// linear in the input (no opcode copies a container; the object table grows by at most one
/// entry per opcode), nothing recurses, and only globals a state dict or a training checkpoint
/// uses are accepted.
struct Unpickler {
    let bytes: Data
    let file: String
    var pos: Int
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    /// Entry 0 is the one empty tuple every EMPTY_TUPLE shares (tuples never change).
    var objects: [PickleObject] = [.tuple([])]

    init(_ bytes: Data, file: String) {
        self.bytes = bytes
        self.file = file
        pos = bytes.startIndex
    }

    /// Module–name pairs a pickle may name. They are never imported or called; the list only
    /// narrows what a file can say to what torch.save writes for weights and the baggage
    /// training scripts store next to them (argparse namespaces, numpy scalars, versions).
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "collections.defaultdict", "builtins.set", "builtins.frozenset",
        "builtins.slice", "builtins.bytearray", "builtins.complex", "__builtin__.set", "_codecs.encode",
        "argparse.Namespace", "torch.Size", "torch.device", "torch.torch_version.TorchVersion",
        "torch.nn.parameter.Parameter", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
    ]

    static func isAllowed(module: String, name: String) -> Bool {
        if allowedGlobals.contains(module + "." + name) { return true }
        // torch.FloatStorage, torch.HalfStorage, …, torch.UntypedStorage; dtypes (torch.float32).
        if module == "torch" {
            return name.hasSuffix("Storage") && name.allSatisfy { $0.isLetter || $0.isNumber }
                || TorchCheckpoint.dtypeNames.contains(name)
        }
        return false
    }

    func fail(_ reason: String) -> TorchFileError { TorchFileError(file: file, reason: "pickle: \(reason)") }
    var offset: Int { pos - bytes.startIndex }

    mutating func byte() throws -> UInt8 {
        guard pos < bytes.endIndex else { throw fail("unexpected end of data at byte \(offset)") }
        defer { pos += 1 }
        return bytes[pos]
    }
    /// `n` bytes, refused before any slicing when fewer remain (or `n` is negative).
    mutating func take(_ n: Int) throws -> Data {
        guard n >= 0, n <= bytes.endIndex - pos else {
            throw fail("a length of \(n) bytes at byte \(offset) runs past the end of the data (\(bytes.endIndex - pos) left)")
        }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    mutating func uint(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    /// A length field; any value above the bytes left is refused by `take` (and one that does not
    /// fit Int cannot be a length at all).
    mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard let len = Int(exactly: v) else { throw fail("length \(v) at byte \(offset - n) does not fit in memory") }
        return len
    }
    mutating func line() throws -> String {
        guard let nl = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("unterminated text line at byte \(offset)") }
        defer { pos = nl + 1 }
        return String(decoding: bytes[pos..<nl], as: UTF8.self)
    }
    mutating func push(_ v: PickleValue) { stack.append(v) }
    mutating func pushObject(_ o: PickleObject) {
        objects.append(o)
        stack.append(.object(objects.count - 1))
    }
    /// Pops one value; like CPython, never across the innermost MARK.
    mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else {
            throw fail(stack.isEmpty ? "stack underflow at byte \(offset - 1)" : "pop across a MARK at byte \(offset - 1)")
        }
        return stack.removeLast()
    }
    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK before the opcode at byte \(offset - 1)") }
        // Pops never cross a mark, so it always lies within the stack.
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }
    func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("empty stack at byte \(offset - 1)") }
        return v
    }

    /// The object table index of `v`, or an error naming what the opcode needed.
    func objectIndex(_ v: PickleValue, for opcode: String) throws -> Int {
        guard case .object(let i) = v else { throw fail("\(opcode) on \(describe(v)) at byte \(offset - 1)") }
        return i
    }

    mutating func append(_ items: [PickleValue], to target: PickleValue, opcode: String) throws {
        let i = try objectIndex(target, for: opcode)
        guard case .list(var list) = objects[i] else { throw fail("\(opcode) to a non-list at byte \(offset - 1)") }
        // Leave a placeholder so `list` is the only reference and grows in place.
        objects[i] = .tuple([])
        list.append(contentsOf: items)
        objects[i] = .list(list)
    }

    mutating func setItems(_ kv: [PickleValue], in target: PickleValue, opcode: String) throws {
        let i = try objectIndex(target, for: opcode)
        guard kv.count % 2 == 0 else { throw fail("\(opcode) with an odd number of items at byte \(offset - 1)") }
        var dict: PickleDict
        switch objects[i] {
        case .dict(let d): dict = d
        // OrderedDict (and defaultdict) arrive as a recorded call whose items follow.
        case .call(_, _, nil): dict = PickleDict()
        default: throw fail("\(opcode) on a non-dict at byte \(offset - 1)")
        }
        objects[i] = .tuple([])
        for k in stride(from: 0, to: kv.count, by: 2) { dict.set(kv[k], kv[k + 1]) }
        objects[i] = .dict(dict)
    }

    func describe(_ v: PickleValue) -> String {
        switch v {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .global(let m, let n): return "\(m).\(n)"
        case .object(let i):
            switch objects[i] {
            case .tuple: return "a tuple"
            case .list: return "a list"
            case .dict: return "a dict"
            case .call: return "an object"
            case .persistent: return "a persistent id"
            }
        }
    }

    mutating func global(_ module: String, _ name: String) throws -> PickleValue {
        guard Self.isAllowed(module: module, name: name) else {
            throw fail("global '\(module).\(name)' at byte \(offset) is not one a state dict or checkpoint uses; refused (re-save just the weights: torch.save(model.state_dict(), path))")
        }
        return .global(module: module, name: name)
    }

    mutating func load() throws -> PickleGraph {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                  // PROTO
            case 0x95: _ = try take(8)                                 // FRAME (a hint only)
            case 0x2E: return PickleGraph(root: try pop(), objects: objects)  // STOP
            case 0x28: marks.append(stack.count)                       // MARK
            case 0x4E: push(.none)                                     // NONE
            case 0x88: push(.bool(true))                               // NEWTRUE
            case 0x89: push(.bool(false))                              // NEWFALSE
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x4B: push(.int(Int(try uint(1))))                    // BININT1
            case 0x4D: push(.int(Int(try uint(2))))                    // BININT2
            case 0x8A:                                                 // LONG1
                let n = Int(try byte())
                let d = try take(n)
                guard n <= 8 else { throw fail("integer of \(n) bytes at byte \(offset - n - 2) is wider than 64 bits") }
                var v: UInt64 = 0
                for (i, b) in d.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8, let last = d.last, last & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }
                push(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                                 // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                push(.float(Double(bitPattern: v)))
            case 0x58, 0x54: push(.string(String(decoding: try take(try length(4)), as: UTF8.self)))  // BINUNICODE, BINSTRING
            case 0x8C, 0x55: push(.string(String(decoding: try take(try length(1)), as: UTF8.self)))  // SHORT_BINUNICODE, SHORT_BINSTRING
            case 0x8D: push(.string(String(decoding: try take(try length(8)), as: UTF8.self)))        // BINUNICODE8
            case 0x42: push(.bytes(try take(try length(4))))           // BINBYTES
            case 0x43: push(.bytes(try take(try length(1))))           // SHORT_BINBYTES
            case 0x8E: push(.bytes(try take(try length(8))))           // BINBYTES8
            case 0x29: push(.object(0))                                // EMPTY_TUPLE
            case 0x85: pushObject(.tuple([try pop()]))                 // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); pushObject(.tuple([a, b]))           // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); pushObject(.tuple([a, b, c]))  // TUPLE3
            case 0x74: pushObject(.tuple(try popMark()))               // TUPLE
            case 0x5D: pushObject(.list([]))                           // EMPTY_LIST
            case 0x6C: pushObject(.list(try popMark()))                // LIST
            case 0x61:                                                 // APPEND
                let v = try pop()
                try append([v], to: try top(), opcode: "APPEND")
            case 0x65:                                                 // APPENDS
                let vs = try popMark()
                try append(vs, to: try top(), opcode: "APPENDS")
            case 0x7D: pushObject(.dict(PickleDict()))                 // EMPTY_DICT
            case 0x64:                                                 // DICT
                let kv = try popMark()
                pushObject(.dict(PickleDict()))
                try setItems(kv, in: try top(), opcode: "DICT")
            case 0x73:                                                 // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v], in: try top(), opcode: "SETITEM")
            case 0x75:                                                 // SETITEMS
                let kv = try popMark()
                try setItems(kv, in: try top(), opcode: "SETITEMS")
            case 0x8F: pushObject(.list([]))                           // EMPTY_SET (read as a list)
            case 0x90:                                                 // ADDITEMS
                let vs = try popMark()
                try append(vs, to: try top(), opcode: "ADDITEMS")
            case 0x91: pushObject(.list(try popMark()))                // FROZENSET
            case 0x63:                                                 // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                push(try global(module, name))
            case 0x93:                                                 // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.string, let n = name.string else { throw fail("STACK_GLOBAL needs two strings at byte \(offset - 1)") }
                push(try global(m, n))
            case 0x52, 0x81:                                           // REDUCE, NEWOBJ
                let args = try pop(), f = try pop()
                guard case .global = f else { throw fail("\(op == 0x52 ? "REDUCE" : "NEWOBJ") calls \(describe(f)), not a global, at byte \(offset - 1)") }
                pushObject(.call(f, Self.arguments(args, objects), state: nil))
            case 0x62:                                                 // BUILD
                let state = try pop()
                if case .object(let i) = try top(), case .call(let f, let a, _) = objects[i] {
                    objects[i] = .call(f, a, state: state)
                }
            case 0x51: pushObject(.persistent(try pop()))              // BINPERSID
            case 0x71, 0x72:                                           // BINPUT, LONG_BINPUT
                let v = try top()
                memo[Int(try uint(op == 0x71 ? 1 : 4))] = v
            case 0x94: let v = try top(); memo[memo.count] = v         // MEMOIZE
            case 0x68, 0x6A:                                           // BINGET, LONG_BINGET
                let k = Int(try uint(op == 0x68 ? 1 : 4))
                guard let v = memo[k] else { throw fail("memo \(k) read before it was written (byte \(offset))") }
                push(v)
            case 0x30: _ = try pop()                                   // POP
            case 0x31: _ = try popMark()                               // POP_MARK
            case 0x32: push(try top())                                 // DUP
            default:
                throw fail(String(format: "opcode 0x%02X at byte %ld is not supported (only state dicts of tensors are read)", op, offset - 1))
            }
        }
    }

    /// REDUCE's argument tuple as a list; anything else is kept as a single argument.
    static func arguments(_ args: PickleValue, _ objects: [PickleObject]) -> [PickleValue] {
        if case .object(let i) = args, case .tuple(let xs) = objects[i] { return xs }
        return [args]
    }
}
