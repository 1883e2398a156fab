import Foundation
import FinchTensor
import FinchNN

public struct TorchFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// PyTorch `.pth` / `.pt` files as `torch.save` writes them since 1.6 (a ZIP of `data.pkl` and
/// one stored member per storage). The pickle is interpreted as data only — no class is
/// imported, no code runs — so only state dicts of tensors (plain, nested in a checkpoint dict
/// under `state_dict` / `model` / …, or saved as Parameters) are understood.
///
/// Every tensor's size, stride and storage offset is checked against its storage before a byte
/// is copied, and the work and memory a file can cause are bounded by its size: a shared or
/// cyclic pickle cannot make the walk over it (or the tensors decoded) grow beyond that.
public enum TorchCheckpoint {
    /// Storage classes by name, as the pickle names them, and the safetensors dtype of their bytes.
    static let storageTypes: [String: SafeTensorsDType] = [
        "FloatStorage": .f32, "DoubleStorage": .f64, "HalfStorage": .f16, "BFloat16Storage": .bf16,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    /// `torch.<dtype>` globals a checkpoint may mention (inert names; tensors use storages).
    static let dtypeNames: Set<String> = [
        "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
        "int16", "short", "int8", "uint8", "bool", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2",
    ]

    /// Keys under which training scripts commonly nest the weights, in order of preference.
    static let nestedKeys = ["state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema", "net", "weights"]
    /// How deep the state dict may sit under those keys (`checkpoint["model"]["state_dict"]` is two).
    static let maxNestingForStateDict = 3
    /// Nested dicts inside the state dict itself (names like `a.b.c.weight`), beyond any real model.
    static let maxNameDepth = 64
    /// How many storage elements' bytes all tensors together may read, per byte of the file:
    /// views of one storage (tied or fused weights) are decoded once each, so a little over one
    /// is normal, and a pickle repeating one storage a million times is refused.
    static let decodeBudgetPerFileByte = 4
    static let decodeBudgetSlack = 1 << 20
    /// Bytes in a dotted tensor name (real ones are under 200).
    static let maxNameLength = 4096
    /// `_rebuild_parameter` wrappers around one tensor.
    static let maxParameterWrapping = 8

    public static func isTorchFile(_ url: URL) -> Bool { ZipArchive.isZip(url) }

    /// The tensors in file order, names as saved (a common `module.` prefix from DataParallel removed).
    public static func read(_ url: URL) throws -> [(name: String, value: StateValue)] {
        let head: [UInt8]
        do { head = try fileHead(url.path, count: 4, what: "PyTorch file") } catch let e as InputFileError {
            throw TorchFileError(file: url.path, reason: inputFileReason(e))
        }
        try checkSignature(head, file: url.path)
        return try read(try ZipArchive(url: url))
    }

    /// The same from bytes in memory; `name` stands for the path in messages.
    public static func read(bytes: Data, name: String) throws -> [(name: String, value: StateValue)] {
        try checkSignature(Array(bytes.prefix(4)), file: name)
        return try read(try ZipArchive(bytes: bytes, name: name))
    }

    static func checkSignature(_ head: [UInt8], file: String) throws {
        guard head == [0x50, 0x4B, 0x03, 0x04] else {
            if head.first == 0x80 {
                throw TorchFileError(file: file, reason: "legacy (pre-1.6) torch.save format; re-save it with torch.save(obj, path) in a current PyTorch")
            }
            throw TorchFileError(file: file, reason: "not a PyTorch .pth/.pt file (no ZIP signature)")
        }
    }

    static func read(_ zip: ZipArchive) throws -> [(name: String, value: StateValue)] {
        guard let pkl = zip.names.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw TorchFileError(file: zip.path, reason: "ZIP archive without data.pkl: not written by torch.save")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let order = zip.entries[prefix + "byteorder"], order.size > 0, String(decoding: try zip.member(prefix + "byteorder"), as: UTF8.self) != "little" {
            throw TorchFileError(file: zip.path, reason: "big-endian tensors are not supported")
        }
        let pickle = try zip.member(pkl)
        var vm = Unpickler(pickle, file: zip.path + "/" + pkl)
        let graph = try vm.load()
        var seen = Set<Int>()
        guard let dict = stateDict(in: graph.root, graph, depth: 0, seen: &seen) else {
            throw TorchFileError(file: zip.path, reason: "no dictionary of tensors found (top level or under \(nestedKeys.joined(separator: ", ")))")
        }
        var reader = TensorReader(graph: graph, zip: zip, archivePrefix: prefix, file: zip.path,
                                  visitsLeft: pickle.count + 64,
                                  decodeBudget: min(zip.size, Int.max / 8) * decodeBudgetPerFileByte + decodeBudgetSlack)
        var out: [(name: String, value: StateValue)] = []
        try reader.flatten(dict, prefix: "", depth: 0, into: &out)
        guard !out.isEmpty else { throw TorchFileError(file: zip.path, reason: "the state dict holds no tensors") }
        if out.allSatisfy({ $0.name.hasPrefix("module.") }) {
            out = out.map { (String($0.name.dropFirst("module.".count)), $0.value) }
        }
        return out
    }

    static func isTensor(_ v: PickleValue, _ graph: PickleGraph) -> Bool {
        if case .call(.global(let m, let n), _, _)? = graph.object(v) { return m.hasPrefix("torch") && n.hasPrefix("_rebuild_") }
        return false
    }

    /// The dict holding tensors: `v` itself or one under `nestedKeys`, at most a few levels down.
    /// Each dict is looked at once, so dicts that all point at each other cannot make the search
    /// repeat itself.
    static func stateDict(in v: PickleValue, _ graph: PickleGraph, depth: Int, seen: inout Set<Int>) -> PickleDict? {
        guard case .object(let id) = v, let dict = graph.dict(v), seen.insert(id).inserted else { return nil }
        if dict.pairs.contains(where: { isTensor($0.value, graph) }) { return dict }
        guard depth < maxNestingForStateDict else { return nil }
        for key in nestedKeys {
            if let inner = dict[key], let d = stateDict(in: inner, graph, depth: depth + 1, seen: &seen) { return d }
        }
        return nil
    }

    static func contiguousStrides(_ size: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: size.count)
        var acc = 1
        for d in stride(from: size.count - 1, through: 0, by: -1) { s[d] = acc; acc = acc &* size[d] }
        return s
    }
}

/// Walks the state dict and decodes its tensors within the file's budgets.
struct TensorReader {
    let graph: PickleGraph
    let zip: ZipArchive
    let archivePrefix: String
    let file: String
    /// Dict entries the walk may still visit: a pickle can share one dict under many keys (or
    /// make a cycle), which would otherwise multiply the walk without bound.
    var visitsLeft: Int
    /// Storage bytes the tensors may still read.
    var decodeBudget: Int

    func fail(_ name: String, _ r: String) -> TorchFileError { TorchFileError(file: file, reason: "tensor '\(name)': \(r)") }

    mutating func flatten(_ dict: PickleDict, prefix: String, depth: Int, into out: inout [(name: String, value: StateValue)]) throws {
        guard depth <= TorchCheckpoint.maxNameDepth else {
            throw TorchFileError(file: file, reason: "state dict nested more than \(TorchCheckpoint.maxNameDepth) levels under '\(prefix.prefix(200))' (a cycle?)")
        }
        for (k, v) in dict.pairs {
            visitsLeft -= 1
            guard visitsLeft >= 0 else {
                throw TorchFileError(file: file, reason: "the pickle refers to the same entries over and over (more entries than its bytes could hold); refused")
            }
            guard let key = k.string ?? k.int.map(String.init) else { continue }
            // Names are built by joining keys level by level; a cap keeps long keys in a cyclic
            // pickle from growing quadratically in memory.
            guard prefix.utf8.count + key.utf8.count <= TorchCheckpoint.maxNameLength else {
                throw TorchFileError(file: file, reason: "tensor name '\((prefix + key.prefix(100)).prefix(100))…' is longer than \(TorchCheckpoint.maxNameLength) bytes")
            }
            let name = prefix + key
            if TorchCheckpoint.isTensor(v, graph) {
                out.append((name, try tensor(v, name: name)))
            } else if let inner = graph.dict(v) {
                try flatten(inner, prefix: name + ".", depth: depth + 1, into: &out)
            }
            // Other values (epoch counters, hyper-parameters) are not weights.
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, …)`, possibly wrapped in `_rebuild_parameter`.
    mutating func tensor(_ value: PickleValue, name: String) throws -> StateValue {
        var v = value
        var fn = ""
        var args: [PickleValue] = []
        for _ in 0...TorchCheckpoint.maxParameterWrapping {
            guard case .call(.global(_, let f), let a, _)? = graph.object(v) else { throw fail(name, "not a tensor") }
            fn = f; args = a
            guard f.hasPrefix("_rebuild_parameter") else { break }
            guard let inner = a.first else { throw fail(name, "empty parameter") }
            v = inner
        }
        guard fn == "_rebuild_tensor_v2" || fn == "_rebuild_tensor", args.count >= 4,
              case .persistent(let pid)? = graph.object(args[0]), let p = graph.items(pid), p.count >= 5, p[0].string == "storage",
              case .global(_, let storageName) = p[1], let key = p[2].string ?? p[2].int.map(String.init),
              let sizeItems = graph.items(args[2]), let strideItems = graph.items(args[3]) else {
            throw fail(name, "unsupported tensor layout (\(fn)); only dense CPU tensors are read")
        }
        guard let offset = args[1].int else { throw fail(name, "storage offset is not an integer") }
        let size = sizeItems.compactMap(\.int), stride = strideItems.compactMap(\.int)
        guard size.count == sizeItems.count, stride.count == strideItems.count else {
            throw fail(name, "size or stride holds something other than integers")
        }
        guard let dtype = TorchCheckpoint.storageTypes[storageName] else { throw fail(name, "storage type \(storageName) is not supported") }
        return try decode(name: name, storageKey: key, declaredElements: p[4].int, dtype: dtype,
                          offset: offset, size: size, stride: stride)
    }

    /// Validates the view against its storage, then copies it out element by element in
    /// row-major order (views, transposes and slices of shared storages arrive this way).
    mutating func decode(name: String, storageKey: String, declaredElements: Int?, dtype: SafeTensorsDType,
                         offset: Int, size: [Int], stride: [Int]) throws -> StateValue {
        guard stride.count == size.count else {
            throw fail(name, "size \(size) has \(size.count) dimensions but stride \(stride) has \(stride.count)")
        }
        if let d = size.firstIndex(where: { $0 < 0 }) { throw fail(name, "size \(size): dimension \(d) is negative") }
        if let d = stride.firstIndex(where: { $0 < 0 }) { throw fail(name, "stride \(stride): dimension \(d) is negative") }
        guard offset >= 0 else { throw fail(name, "storage offset \(offset) is negative") }
        guard let count = checkedByteCount(shape: size, elementSize: 1), let byteCount = checkedByteCount(shape: size, elementSize: dtype.size) else {
            throw fail(name, "size \(size) has more elements than can be addressed")
        }
        guard byteCount <= decodeBudget else {
            throw fail(name, "\(count) elements (\(byteCount) bytes) are more than a file of \(zip.size) bytes can hold, with the tensors before it")
        }
        decodeBudget -= byteCount

        let member = archivePrefix + "data/" + storageKey
        guard zip.has(member) else { throw fail(name, "its storage '\(storageKey)' is not in the archive") }
        return try zip.withMember(member) { bytes -> StateValue in
            let storageCount = bytes.count / dtype.size
            if let declared = declaredElements {
                guard declared >= 0, declared <= storageCount else {
                    throw fail(name, "storage '\(storageKey)' is declared with \(declared) elements but holds \(storageCount) (truncated?)")
                }
            }
            if count > 0 {
                // The last element the view reaches, in checked arithmetic: every term is ≥ 0.
                var maxIndex = offset
                for (s, st) in Swift.zip(size, stride) {
                    let (step, o1) = (s - 1).multipliedReportingOverflow(by: st)
                    let (sum, o2) = maxIndex.addingReportingOverflow(step)
                    guard !o1, !o2 else { throw fail(name, "size \(size) with stride \(stride) reaches beyond any storage") }
                    maxIndex = sum
                }
                guard maxIndex < storageCount else {
                    throw fail(name, "offset \(offset), size \(size), stride \(stride) reach element \(maxIndex) of a storage of \(storageCount) (truncated file?)")
                }
            }
            var contiguous = [UInt8](repeating: 0, count: byteCount)
            if count > 0 {
                let w = dtype.size
                contiguous.withUnsafeMutableBytes { dst in
                    if stride == TorchCheckpoint.contiguousStrides(size) {
                        dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(offset * w)..<(offset * w + byteCount)]))
                        return
                    }
                    // Dimensions of size 1 move nothing; leaving them out keeps the walk linear in
                    // the element count however many of them the file lists.
                    let dims = size.indices.filter { size[$0] > 1 }
                    let sz = dims.map { size[$0] }, st = dims.map { stride[$0] }
                    var index = [Int](repeating: 0, count: dims.count)
                    var e = offset
                    for i in 0..<count {
                        (dst.baseAddress! + i * w).copyMemory(from: bytes.baseAddress! + e * w, byteCount: w)
                        var d = dims.count - 1
                        while d >= 0 {
                            index[d] += 1; e += st[d]
                            if index[d] < sz[d] { break }
                            e -= st[d] * sz[d]; index[d] = 0; d -= 1
                        }
                    }
                }
            }
            return try contiguous.withUnsafeBytes { raw -> StateValue in
                if dtype.isInteger {
                    switch decodeIntegers(raw, dtype: dtype, count: count) {
                    case .success(let v): return .int64(v, shape: size)
                    case .failure(let e): throw fail(name, "element \(e.index) does not fit in Int64")
                    }
                }
                let t = Tensor(uninitializedShape: size)
                decodeFloats(raw, dtype: dtype, count: count, into: t.basePointer)
                return .float(t)
            }
        }
    }
}
