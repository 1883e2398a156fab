import Foundation
import CHDF5
import FinchTensor

/// What went wrong with an HDF5 file, naming the file and the object path.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    case cannotOpen(file: String, reason: String)
    case cannotCreate(file: String, reason: String)
    case missing(file: String, path: String)
    case wrongKind(file: String, path: String, expected: String, found: String)
    case operationFailed(file: String, path: String, operation: String)

    public var description: String {
        switch self {
        case .cannotOpen(let f, let r): return "\(f): cannot open as HDF5 (\(r))"
        case .cannotCreate(let f, let r): return "\(f): cannot create (\(r))"
        case .missing(let f, let p): return "\(f): no object '\(p)'"
        case .wrongKind(let f, let p, let e, let found): return "\(f): '\(p)' is \(found), expected \(e)"
        case .operationFailed(let f, let p, let op): return "\(f): \(op) failed for '\(p)'"
        }
    }
}

/// An HDF5 identifier closed when the last reference goes.
final class HDF5Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t
    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.close = close
    }
    deinit { _ = close(id) }
}

/// An open HDF5 file (HDF5's serial library: use from one thread at a time).
public final class HDF5File {
    public let path: String
    let handle: HDF5Handle

    private static let setup: Void = { finch_h5_silence_errors() }()

    /// Opens an existing file read-only.
    public init(reading url: URL) throws {
        _ = Self.setup
        path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error.cannotOpen(file: path, reason: "no such file")
        }
        guard H5Fis_hdf5(path) > 0 else { throw HDF5Error.cannotOpen(file: path, reason: "not an HDF5 file") }
        let id = H5Fopen(path, finch_h5f_acc_rdonly(), finch_h5p_default())
        guard id >= 0 else { throw HDF5Error.cannotOpen(file: path, reason: "HDF5 could not open it") }
        handle = HDF5Handle(id, close: H5Fclose)
    }

    /// Creates (truncating) a file. Prefer `writeAtomically`, which never leaves a partial file.
    public init(creating url: URL) throws {
        _ = Self.setup
        path = url.path
        let id = H5Fcreate(path, finch_h5f_acc_trunc(), finch_h5p_default(), finch_h5p_default())
        guard id >= 0 else { throw HDF5Error.cannotCreate(file: path, reason: String(cString: strerror(errno))) }
        handle = HDF5Handle(id, close: H5Fclose)
    }

    public var root: HDF5Group { HDF5Group(file: self, handle: handle, path: "/") }

    /// Writes a new file at `url` through a temporary file in the same folder that is renamed
    /// over `url` only after `body` succeeds and the file is closed and synced: a crash or an
    /// error at any point leaves the previous file intact and no partial one.
    public static func writeAtomically(to url: URL, _ body: (HDF5Group) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw HDF5Error.cannotCreate(file: url.path, reason: "folder \(dir.path) does not exist")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try scoped {
                let file = try HDF5File(creating: tmp)
                try body(file.root)
                guard H5Fflush(file.handle.id, H5F_SCOPE_GLOBAL) >= 0 else {
                    throw HDF5Error.operationFailed(file: url.path, path: "/", operation: "flush")
                }
            }
            let fd = open(tmp.path, O_RDONLY)
            if fd >= 0 { fsync(fd); close(fd) }
            guard rename(tmp.path, url.path) == 0 else {
                throw HDF5Error.cannotCreate(file: url.path, reason: String(cString: strerror(errno)))
            }
        } catch {
            unlink(tmp.path)
            throw error
        }
    }

    /// A scope whose end releases the file object, closing the HDF5 file before it is renamed.
    private static func scoped(_ body: () throws -> Void) rethrows { try body() }
}

/// A value stored as an HDF5 attribute.
public enum HDF5AttributeValue: Equatable, Sendable {
    case string(String)
    case strings([String])
    case double(Double)
    case doubles([Double])
    case int64(Int64)
    case int64s([Int64])
}

/// A group in an HDF5 file: datasets, subgroups and attributes addressed by name.
public struct HDF5Group {
    let file: HDF5File
    let handle: HDF5Handle
    public let path: String

    func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    // MARK: Structure

    public func createGroup(_ name: String) throws -> HDF5Group {
        let id = H5Gcreate2(handle.id, name, intermediateGroups(), finch_h5p_default(), finch_h5p_default())
        guard id >= 0 else { throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "create group") }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    public func group(_ name: String) throws -> HDF5Group {
        try requireKind(name, H5O_TYPE_GROUP, "a group")
        let id = H5Gopen2(handle.id, name, finch_h5p_default())
        guard id >= 0 else { throw HDF5Error.missing(file: file.path, path: child(name)) }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    public func contains(_ name: String) -> Bool {
        // Check each level so a missing intermediate group is not an HDF5 error.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(handle.id, prefix, finch_h5p_default()) <= 0 { return false }
        }
        return true
    }

    public func isGroup(_ name: String) -> Bool { kind(name) == H5O_TYPE_GROUP }
    public func isDataset(_ name: String) -> Bool { kind(name) == H5O_TYPE_DATASET }

    /// Names of the direct members, in HDF5's name order.
    public func memberNames() throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(handle.id, &info) >= 0 else {
            throw HDF5Error.operationFailed(file: file.path, path: path, operation: "list members")
        }
        return (0..<info.nlinks).compactMap { i in
            let n = H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, finch_h5p_default())
            guard n >= 0 else { return nil }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, finch_h5p_default())
            return String(cString: buf)
        }
    }

    private func kind(_ name: String) -> H5O_type_t? {
        guard contains(name) else { return nil }
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(handle.id, name, &info, UInt32(H5O_INFO_BASIC), finch_h5p_default()) >= 0 else { return nil }
        return info.type
    }

    private func requireKind(_ name: String, _ k: H5O_type_t, _ label: String) throws {
        guard let found = kind(name) else { throw HDF5Error.missing(file: file.path, path: child(name)) }
        guard found == k else {
            throw HDF5Error.wrongKind(file: file.path, path: child(name), expected: label,
                                      found: found == H5O_TYPE_GROUP ? "a group" : "a dataset")
        }
    }

    /// One link-creation property list for the process: names with "/" create their parent groups.
    private static let linkCreation: hid_t = {
        let p = H5Pcreate(finch_h5p_link_create_default_class())
        H5Pset_create_intermediate_group(p, 1)
        return p
    }()

    private func intermediateGroups() -> hid_t { Self.linkCreation }

    // MARK: Datasets

    public func write(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int]) throws {
        try writeRaw(name, type: finch_h5t_native_float(), shape: shape, count: floats.count, bytes: UnsafeRawPointer(floats.baseAddress))
    }

    public func write(_ name: String, tensor: Tensor) throws {
        try tensor.withContiguousBuffer { try write(name, floats: $0, shape: tensor.shape) }
    }

    public func write(_ name: String, int64s: [Int64], shape: [Int]? = nil) throws {
        try int64s.withUnsafeBytes {
            try writeRaw(name, type: finch_h5t_native_int64(), shape: shape ?? [int64s.count], count: int64s.count, bytes: $0.baseAddress)
        }
    }

    public func write(_ name: String, doubles: [Double], shape: [Int]? = nil) throws {
        try doubles.withUnsafeBytes {
            try writeRaw(name, type: finch_h5t_native_double(), shape: shape ?? [doubles.count], count: doubles.count, bytes: $0.baseAddress)
        }
    }

    /// A scalar variable-length UTF-8 string dataset (h5py reads it as `str` / bytes).
    public func write(_ name: String, string: String) throws {
        let type = finch_h5t_variable_string_utf8()
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let d = H5Dcreate2(handle.id, name, type, space, intermediateGroups(), finch_h5p_default(), finch_h5p_default())
        guard d >= 0 else { throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "create dataset") }
        defer { H5Dclose(d) }
        let ok = string.withCString { cs -> Bool in
            var ptr: UnsafePointer<CChar>? = cs
            return H5Dwrite(d, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), &ptr) >= 0
        }
        guard ok else { throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "write") }
    }

    private func writeRaw(_ name: String, type: hid_t, shape: [Int], count: Int, bytes: UnsafeRawPointer?) throws {
        precondition(Shape.count(shape) == count, "HDF5 write \(name): \(count) values for shape \(shape)")
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
        defer { H5Sclose(space) }
        let d = H5Dcreate2(handle.id, name, type, space, intermediateGroups(), finch_h5p_default(), finch_h5p_default())
        guard d >= 0 else { throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "create dataset") }
        defer { H5Dclose(d) }
        if count > 0 {
            guard H5Dwrite(d, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), bytes) >= 0 else {
                throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "write")
            }
        }
    }

    /// Shape of a dataset.
    public func shape(_ name: String) throws -> [Int] {
        let d = try openDataset(name)
        return try withExtendedLifetime(d) { try datasetShape(d, name) }
    }

    public func readTensor(_ name: String) throws -> Tensor {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let shape = try datasetShape(d, name)
        let t = Tensor(uninitializedShape: shape)
        try read(d, name, type: finch_h5t_native_float(), into: UnsafeMutableRawPointer(t.basePointer), count: t.count)
        return t
    }

    public func readInt64s(_ name: String) throws -> [Int64] {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let n = Shape.count(try datasetShape(d, name))
        var out = [Int64](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { try read(d, name, type: finch_h5t_native_int64(), into: $0.baseAddress, count: n) }
        return out
    }

    public func readDoubles(_ name: String) throws -> [Double] {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let n = Shape.count(try datasetShape(d, name))
        var out = [Double](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { try read(d, name, type: finch_h5t_native_double(), into: $0.baseAddress, count: n) }
        return out
    }

    public func readString(_ name: String) throws -> String {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let type = finch_h5t_variable_string_utf8()
        defer { H5Tclose(type) }
        let stored = H5Dget_type(d.id)
        defer { H5Tclose(stored) }
        guard H5Tget_class(stored) == H5T_STRING else {
            throw HDF5Error.wrongKind(file: file.path, path: child(name), expected: "a string", found: "another type")
        }
        var ptr: UnsafeMutablePointer<CChar>? = nil
        guard H5Dread(d.id, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), &ptr) >= 0, let p = ptr else {
            throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "read")
        }
        defer { H5free_memory(p) }
        return String(cString: p)
    }

    /// Dtype class of a dataset: "float", "integer", "string" or "other" (for `finch inspect`).
    public func datasetTypeName(_ name: String) throws -> String {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let t = H5Dget_type(d.id)
        defer { H5Tclose(t) }
        switch H5Tget_class(t) {
        case H5T_FLOAT: return "float\(H5Tget_size(t) * 8)"
        case H5T_INTEGER: return "int\(H5Tget_size(t) * 8)"
        case H5T_STRING: return "string"
        default: return "other"
        }
    }

    private func openDataset(_ name: String) throws -> HDF5Handle {
        try requireKind(name, H5O_TYPE_DATASET, "a dataset")
        let id = H5Dopen2(handle.id, name, finch_h5p_default())
        guard id >= 0 else { throw HDF5Error.missing(file: file.path, path: child(name)) }
        return HDF5Handle(id, close: H5Dclose)
    }

    private func datasetShape(_ d: HDF5Handle, _ name: String) throws -> [Int] {
        let space = H5Dget_space(d.id)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "read shape") }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    private func read(_ d: HDF5Handle, _ name: String, type: hid_t, into p: UnsafeMutableRawPointer?, count: Int) throws {
        guard count > 0 else { return }
        guard H5Dread(d.id, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), p) >= 0 else {
            throw HDF5Error.operationFailed(file: file.path, path: child(name), operation: "read (type conversion)")
        }
    }

    // MARK: Attributes

    public func setAttribute(_ name: String, _ value: HDF5AttributeValue) throws {
        if H5Aexists(handle.id, name) > 0 { H5Adelete(handle.id, name) }
        func create(_ type: hid_t, _ dims: [Int]?) throws -> HDF5Handle {
            var d = (dims ?? []).map { hsize_t($0) }
            let space = dims == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, nil)
            defer { H5Sclose(space) }
            let a = H5Acreate2(handle.id, name, type, space, finch_h5p_default(), finch_h5p_default())
            guard a >= 0 else { throw HDF5Error.operationFailed(file: file.path, path: path + "@" + name, operation: "create attribute") }
            return HDF5Handle(a, close: H5Aclose)
        }
        var ok = true
        switch value {
        case .double(let v):
            var x = v
            let a = try create(finch_h5t_native_double(), nil)
            ok = withExtendedLifetime(a) { H5Awrite(a.id, finch_h5t_native_double(), &x) >= 0 }
        case .doubles(let v):
            let a = try create(finch_h5t_native_double(), [v.count])
            ok = v.isEmpty || withExtendedLifetime(a) { v.withUnsafeBytes { H5Awrite(a.id, finch_h5t_native_double(), $0.baseAddress) >= 0 } }
        case .int64(let v):
            var x = v
            let a = try create(finch_h5t_native_int64(), nil)
            ok = withExtendedLifetime(a) { H5Awrite(a.id, finch_h5t_native_int64(), &x) >= 0 }
        case .int64s(let v):
            let a = try create(finch_h5t_native_int64(), [v.count])
            ok = v.isEmpty || withExtendedLifetime(a) { v.withUnsafeBytes { H5Awrite(a.id, finch_h5t_native_int64(), $0.baseAddress) >= 0 } }
        case .string(let s):
            let type = finch_h5t_variable_string_utf8()
            defer { H5Tclose(type) }
            let a = try create(type, nil)
            ok = withExtendedLifetime(a) {
                s.withCString { cs in
                    var p: UnsafePointer<CChar>? = cs
                    return H5Awrite(a.id, type, &p) >= 0
                }
            }
        case .strings(let ss):
            let type = finch_h5t_variable_string_utf8()
            defer { H5Tclose(type) }
            let a = try create(type, [ss.count])
            let cstrings = ss.map { strdup($0) }
            defer { cstrings.forEach { free($0) } }
            var ptrs = cstrings.map { UnsafePointer($0) }
            ok = ss.isEmpty || withExtendedLifetime(a) { H5Awrite(a.id, type, &ptrs) >= 0 }
        }
        guard ok else { throw HDF5Error.operationFailed(file: file.path, path: path + "@" + name, operation: "write attribute") }
    }

    public func attributeNames() -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(handle.id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { return [] }
        return (0..<info.num_attrs).compactMap { i in
            let n = H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, finch_h5p_default())
            guard n >= 0 else { return nil }
            var buf = [CChar](repeating: 0, count: n + 1)
            H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, n + 1, finch_h5p_default())
            return String(cString: buf)
        }
    }

    public func attribute(_ name: String) throws -> HDF5AttributeValue {
        guard H5Aexists(handle.id, name) > 0 else { throw HDF5Error.missing(file: file.path, path: path + "@" + name) }
        let a = HDF5Handle(H5Aopen(handle.id, name, finch_h5p_default()), close: H5Aclose)
        defer { withExtendedLifetime(a) {} }
        let t = H5Aget_type(a.id)
        defer { H5Tclose(t) }
        let space = H5Aget_space(a.id)
        defer { H5Sclose(space) }
        let n = Int(H5Sget_simple_extent_npoints(space))
        let scalar = H5Sget_simple_extent_ndims(space) == 0
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            var v = [Double](repeating: 0, count: n)
            H5Aread(a.id, finch_h5t_native_double(), &v)
            return scalar ? .double(v[0]) : .doubles(v)
        case H5T_INTEGER:
            var v = [Int64](repeating: 0, count: n)
            H5Aread(a.id, finch_h5t_native_int64(), &v)
            return scalar ? .int64(v[0]) : .int64s(v)
        case H5T_STRING:
            let type = finch_h5t_variable_string_utf8()
            defer { H5Tclose(type) }
            if H5Tis_variable_str(t) > 0 {
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
                H5Aread(a.id, type, &ptrs)
                let ss = ptrs.map { $0.map { String(cString: $0) } ?? "" }
                ptrs.forEach { if let p = $0 { H5free_memory(p) } }
                return scalar ? .string(ss.first ?? "") : .strings(ss)
            }
            // Fixed-length strings (as h5py writes numpy bytes): read raw and trim NULs.
            let size = H5Tget_size(t)
            var raw = [CChar](repeating: 0, count: size * n + 1)
            H5Aread(a.id, t, &raw)
            let ss = (0..<n).map { i in String(decoding: raw[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            return scalar ? .string(ss.first ?? "") : .strings(ss)
        default:
            throw HDF5Error.wrongKind(file: file.path, path: path + "@" + name, expected: "a number or string attribute", found: "another type")
        }
    }
}
