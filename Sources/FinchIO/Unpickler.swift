import Foundation

/// The values a PyTorch state-dict pickle is made of. Class references are kept as names and
/// calls as data: nothing in the file is ever executed.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes(Data)
    case tuple([PickleValue]), list([PickleValue])
    /// Key–value pairs in insertion order (OrderedDict and dict alike).
    case dict([(PickleValue, PickleValue)])
    case global(module: String, name: String)
    /// `callable(*args)` recorded, not performed; `state` from BUILD.
    case call(PickleValue, [PickleValue], state: PickleValue?)
    /// A persistent id (torch's storages), resolved by the caller.
    case persistent(PickleValue)
    case mark

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var int: Int? { if case .int(let v) = self { return v }; return nil }
    var items: [PickleValue]? {
        switch self { case .tuple(let v), .list(let v): return v; default: return nil }
    }
}

/// A pickle virtual machine for protocols 2–5 without the opcodes that call into Python: GLOBAL
/// and REDUCE build inert `.global` / `.call` values, so reading a file cannot run its code.
struct Unpickler {
    let bytes: Data
    let file: String
    var pos: Int
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    init(_ bytes: Data, file: String) {
        self.bytes = bytes
        self.file = file
        pos = bytes.startIndex
    }

    func fail(_ reason: String) -> TorchFileError { TorchFileError(file: file, reason: "pickle: \(reason)") }

    mutating func byte() throws -> UInt8 {
        guard pos < bytes.endIndex else { throw fail("unexpected end of data") }
        defer { pos += 1 }
        return bytes[pos]
    }
    mutating func take(_ n: Int) throws -> Data {
        guard n >= 0, pos + n <= bytes.endIndex else { throw fail("unexpected end of data") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    mutating func uint(_ n: Int) throws -> Int {
        let d = try take(n)
        var v = 0
        for (i, b) in d.enumerated() { v |= Int(b) << (8 * i) }
        return v
    }
    mutating func line() throws -> String {
        guard let nl = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("unterminated text line") }
        defer { pos = nl + 1 }
        return String(decoding: bytes[pos..<nl], as: UTF8.self)
    }
    mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }
    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("MARK missing") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }
    mutating func setItems(_ target: inout PickleValue, _ kv: [PickleValue]) throws {
        // OrderedDict arrives as a recorded call `OrderedDict()` whose items follow.
        if case .call(_, let args, nil) = target, args.isEmpty { target = .dict([]) }
        guard case .dict(var pairs) = target, kv.count % 2 == 0 else { throw fail("SETITEMS on a non-dict") }
        for i in stride(from: 0, to: kv.count, by: 2) {
            // Later values replace earlier ones under an equal string key, as in a dict.
            if let k = kv[i].string, let j = pairs.firstIndex(where: { $0.0.string == k }) { pairs[j].1 = kv[i + 1] }
            else { pairs.append((kv[i], kv[i + 1])) }
        }
        target = .dict(pairs)
    }

    mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                  // PROTO
            case 0x95: _ = try take(8)                                 // FRAME
            case 0x2E: return try pop()                                // STOP
            case 0x28: marks.append(stack.count)                       // MARK
            case 0x4E: stack.append(.none)                             // NONE
            case 0x88: stack.append(.bool(true))                       // NEWTRUE
            case 0x89: stack.append(.bool(false))                      // NEWFALSE
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x4B: stack.append(.int(try uint(1)))                 // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                 // BININT2
            case 0x8A:                                                 // LONG1
                let n = Int(try byte())
                let d = try take(n)
                guard n <= 8 else { throw fail("integer wider than 64 bits") }
                var v: UInt64 = 0
                for (i, b) in d.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && d.last! & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }
                stack.append(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                                 // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x58: stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINUNICODE
            case 0x8C: stack.append(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(String(decoding: try take(try uint(8)), as: UTF8.self)))   // BINUNICODE8
            case 0x54: stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINSTRING
            case 0x55: stack.append(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINSTRING
            case 0x42: stack.append(.bytes(try take(try uint(4))))    // BINBYTES
            case 0x43: stack.append(.bytes(try take(Int(try byte())))) // SHORT_BINBYTES
            case 0x8E: stack.append(.bytes(try take(try uint(8))))    // BINBYTES8
            case 0x29: stack.append(.tuple([]))                        // EMPTY_TUPLE
            case 0x85: stack.append(.tuple([try pop()]))               // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))           // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
            case 0x74: stack.append(.tuple(try popMark()))             // TUPLE
            case 0x5D: stack.append(.list([]))                         // EMPTY_LIST
            case 0x6C: stack.append(.list(try popMark()))              // LIST
            case 0x61:                                                 // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("APPEND to a non-list") }
                l.append(v); stack.append(.list(l))
            case 0x65:                                                 // APPENDS
                let vs = try popMark()
                guard case .list(var l) = try pop() else { throw fail("APPENDS to a non-list") }
                l += vs; stack.append(.list(l))
            case 0x7D: stack.append(.dict([]))                         // EMPTY_DICT
            case 0x64:                                                 // DICT
                var d = PickleValue.dict([])
                try setItems(&d, try popMark()); stack.append(d)
            case 0x73:                                                 // SETITEM
                let v = try pop(), k = try pop()
                var d = try pop()
                try setItems(&d, [k, v]); stack.append(d)
            case 0x75:                                                 // SETITEMS
                let kv = try popMark()
                var d = try pop()
                try setItems(&d, kv); stack.append(d)
            case 0x8F: stack.append(.list([]))                         // EMPTY_SET (read as a list)
            case 0x90:                                                 // ADDITEMS
                let vs = try popMark()
                guard case .list(var l) = try pop() else { throw fail("ADDITEMS to a non-set") }
                l += vs; stack.append(.list(l))
            case 0x91: stack.append(.list(try popMark()))              // FROZENSET
            case 0x63:                                                 // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                stack.append(.global(module: module, name: name))
            case 0x93:                                                 // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.string, let n = name.string else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(.global(module: m, name: n))
            case 0x52:                                                 // REDUCE
                let args = try pop(), f = try pop()
                stack.append(.call(f, args.items ?? [args], state: nil))
            case 0x81:                                                 // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(.call(cls, args.items ?? [args], state: nil))
            case 0x62:                                                 // BUILD
                let state = try pop(), obj = try pop()
                if case .call(let f, let a, _) = obj { stack.append(.call(f, a, state: state)) } else { stack.append(obj) }
            case 0x51: stack.append(.persistent(try pop()))            // BINPERSID
            case 0x71: memo[try uint(1)] = stack.last                  // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                  // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                   // MEMOIZE
            case 0x68, 0x6A:                                           // BINGET, LONG_BINGET
                let k = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[k] else { throw fail("memo \(k) read before it was written") }
                stack.append(v)
            case 0x30: _ = try pop()                                   // POP
            case 0x31: _ = try popMark()                               // POP_MARK
            case 0x32: guard let v = stack.last else { throw fail("DUP of an empty stack") }; stack.append(v)  // DUP
            default:
                throw fail(String(format: "opcode 0x%02X at byte %d is not supported (only state dicts of tensors are read)", op, pos - 1 - bytes.startIndex))
            }
        }
    }
}
