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
public enum TorchCheckpoint {
    /// Storage classes by name, as the pickle names them, and the safetensors dtype of their bytes.
    static let storageTypes: [String: SafeTensorsDType] = [
        "FloatStorage": .f32, "DoubleStorage": .f64, "HalfStorage": .f16, "BFloat16Storage": .bf16,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    /// Keys under which training scripts commonly nest the weights, in order of preference.
    static let nestedKeys = ["state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema", "net", "weights"]

    public static func isTorchFile(_ url: URL) -> Bool { ZipArchive.isZip(url) }

    /// The tensors in file order, names as saved (a common `module.` prefix from DataParallel removed).
    public static func read(_ url: URL) throws -> [(name: String, value: StateValue)] {
        guard ZipArchive.isZip(url) else {
            let head = (try? FileHandle(forReadingFrom: url).readData(ofLength: 2)) ?? Data()
            if head.first == 0x80 {
                throw TorchFileError(file: url.path, reason: "legacy (pre-1.6) torch.save format; re-save it with torch.save(obj, path) in a current PyTorch")
            }
            throw TorchFileError(file: url.path, reason: "not a PyTorch .pth/.pt file (no ZIP signature)")
        }
        let zip = try ZipArchive(url: url)
        guard let pkl = zip.names.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw TorchFileError(file: url.path, reason: "ZIP archive without data.pkl: not written by torch.save")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let order = zip.entries[prefix + "byteorder"], order.size > 0, String(decoding: try zip.member(prefix + "byteorder"), as: UTF8.self) != "little" {
            throw TorchFileError(file: url.path, reason: "big-endian tensors are not supported")
        }
        var vm = Unpickler(try zip.member(pkl), file: url.path + "/" + pkl)
        let root = try vm.load()
        guard let dict = stateDict(in: root) else {
            throw TorchFileError(file: url.path, reason: "no dictionary of tensors found (top level or under \(nestedKeys.joined(separator: ", ")))")
        }
        var out: [(name: String, value: StateValue)] = []
        try flatten(dict, prefix: "", into: &out, zip: zip, archivePrefix: prefix, file: url.path)
        guard !out.isEmpty else { throw TorchFileError(file: url.path, reason: "the state dict holds no tensors") }
        if out.allSatisfy({ $0.name.hasPrefix("module.") }) {
            out = out.map { (String($0.name.dropFirst("module.".count)), $0.value) }
        }
        return out
    }

    static func isTensor(_ v: PickleValue) -> Bool {
        if case .call(.global(let m, let n), _, _) = v { return m.hasPrefix("torch") && n.hasPrefix("_rebuild_") }
        return false
    }

    static func stateDict(in v: PickleValue) -> [(PickleValue, PickleValue)]? {
        guard case .dict(let pairs) = v else { return nil }
        if pairs.contains(where: { isTensor($0.1) }) { return pairs }
        for key in nestedKeys {
            if let inner = pairs.first(where: { $0.0.string == key })?.1, let d = stateDict(in: inner) { return d }
        }
        return nil
    }

    static func flatten(_ pairs: [(PickleValue, PickleValue)], prefix: String, into out: inout [(name: String, value: StateValue)],
                        zip: ZipArchive, archivePrefix: String, file: String) throws {
        for (k, v) in pairs {
            guard let key = k.string ?? k.int.map(String.init) else { continue }
            let name = prefix + key
            if isTensor(v) {
                out.append((name, try tensor(v, name: name, zip: zip, archivePrefix: archivePrefix, file: file)))
            } else if case .dict(let inner) = v {
                try flatten(inner, prefix: name + ".", into: &out, zip: zip, archivePrefix: archivePrefix, file: file)
            }
            // Other values (epoch counters, hyper-parameters) are not weights.
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, …)`, possibly wrapped in `_rebuild_parameter`.
    static func tensor(_ v: PickleValue, name: String, zip: ZipArchive, archivePrefix: String, file: String) throws -> StateValue {
        func fail(_ r: String) -> TorchFileError { TorchFileError(file: file, reason: "tensor '\(name)': \(r)") }
        guard case .call(.global(_, let fn), let args, _) = v else { throw fail("not a tensor") }
        if fn.hasPrefix("_rebuild_parameter") {
            guard let inner = args.first else { throw fail("empty parameter") }
            return try tensor(inner, name: name, zip: zip, archivePrefix: archivePrefix, file: file)
        }
        guard fn == "_rebuild_tensor_v2" || fn == "_rebuild_tensor", args.count >= 4,
              case .persistent(let pid) = args[0], let p = pid.items, p.count >= 5, p[0].string == "storage",
              case .global(_, let storageName) = p[1], let key = p[2].string ?? p[2].int.map(String.init),
              let offset = args[1].int, let size = args[2].items?.compactMap(\.int), let stride = args[3].items?.compactMap(\.int),
              size.count == args[2].items?.count, stride.count == size.count else {
            throw fail("unsupported tensor layout (\(fn)); only dense CPU tensors are read")
        }
        guard let dtype = storageTypes[storageName] else { throw fail("storage type \(storageName) is not supported") }
        let bytes = try zip.member(archivePrefix + "data/" + key)
        let storageCount = bytes.count / dtype.size
        let count = size.reduce(1, *)
        // Element indices into the storage, row-major over `size` with the saved strides (views,
        // transposes and slices of shared storages arrive this way).
        var maxIndex = offset
        for (s, st) in Swift.zip(size, stride) where s > 0 { maxIndex += (s - 1) * st }
        guard count == 0 || (offset >= 0 && maxIndex < storageCount) else {
            throw fail("reaches element \(maxIndex) of a storage of \(storageCount) (truncated file?)")
        }
        var contiguous = Data(count: count * dtype.size)
        let isDense = stride == contiguousStrides(size)
        bytes.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
            contiguous.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) in
                let w = dtype.size
                if isDense {
                    if count > 0 { dst.baseAddress!.copyMemory(from: src.baseAddress! + offset * w, byteCount: count * w) }
                    return
                }
                var index = [Int](repeating: 0, count: size.count)
                for i in 0..<count {
                    var e = offset
                    for d in 0..<size.count { e += index[d] * stride[d] }
                    (dst.baseAddress! + i * w).copyMemory(from: src.baseAddress! + e * w, byteCount: w)
                    var d = size.count - 1
                    while d >= 0 { index[d] += 1; if index[d] < size[d] { break }; index[d] = 0; d -= 1 }
                }
            }
        }
        return try contiguous.withUnsafeBytes { raw -> StateValue in
            if dtype.isInteger {
                switch decodeIntegers(raw, dtype: dtype, count: count) {
                case .success(let v): return .int64(v, shape: size)
                case .failure(let e): throw fail("element \(e.index) does not fit in Int64")
                }
            }
            let t = Tensor(uninitializedShape: size)
            decodeFloats(raw, dtype: dtype, count: count, into: t.basePointer)
            return .float(t)
        }
    }

    static func contiguousStrides(_ size: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: size.count)
        var acc = 1
        for d in stride(from: size.count - 1, through: 0, by: -1) { s[d] = acc; acc *= size[d] }
        return s
    }
}
