import Foundation
import CHDF5
import FinchTensor

/// What went wrong with an HDF5 file, naming the file and the object path.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    case cannotOpen(file: String, reason: String)
    case cannotCreate(file: String, reason: String)
    case missing(file: String, path: String)
    case wrongKind(file: String, path: String, expected: String, found: String)
    /// `detail` is libhdf5's own first message (for example the errno text of a failed write).
    case operationFailed(file: String, path: String, operation: String, detail: String = "")
    /// A value in the file that cannot be right: a size past the file's end, an unsupported
    /// rank, an attribute without a value.
    case malformed(file: String, path: String, reason: String)
    /// A checksum did not match: the bytes changed after they were written.
    case corrupted(file: String, path: String, detail: String)
    /// libhdf5 itself crashed, hung or ran away on the file in a separate process (HDF5Probe).
    case unsafe(file: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let f, let r): return "\(f): cannot open as HDF5 (\(r))"
        case .cannotCreate(let f, let r): return "\(f): cannot create (\(r))"
        case .missing(let f, let p): return "\(f): no object '\(p)'"
        case .wrongKind(let f, let p, let e, let found): return "\(f): '\(p)' is \(found), expected \(e)"
        case .operationFailed(let f, let p, let op, let d):
            return "\(f): \(op) failed for '\(p)'" + (d.isEmpty ? "" : " (\(d))")
        case .malformed(let f, let p, let r): return "\(f): '\(p)' is malformed: \(r)"
        case .corrupted(let f, let p, let d):
            return "\(f): '\(p)' is corrupted, its checksum does not match (\(d)); the file was damaged after it was written"
        case .unsafe(let f, let r): return "\(f): refused: \(r); the file is damaged or crafted"
        }
    }
}

/// libhdf5's messages for the call that just failed, innermost first.
func hdf5ErrorMessages() -> [String] {
    var buffer = [CChar](repeating: 0, count: 2048)
    finch_h5_error_messages(&buffer, buffer.count)
    // A message may span lines (libhdf5's "file write failed: time = …\n, filename = …").
    return String(cString: buffer).split(separator: "\u{1e}").map {
        String($0.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").prefix(400))
    }
}

/// The error for a libhdf5 call on `path` that failed: a checksum mismatch anywhere on
/// libhdf5's error stack means damaged bytes, anything else a failed operation.
func hdf5Failure(file: String, path: String, operation: String) -> HDF5Error {
    let messages = hdf5ErrorMessages()
    if let checksum = messages.first(where: { $0.localizedCaseInsensitiveContains("checksum") }) {
        return .corrupted(file: file, path: path, detail: checksum)
    }
    return .operationFailed(file: file, path: path, operation: operation, detail: messages.first ?? "")
}

/// An HDF5 identifier closed when the last reference goes, or earlier by `close()`.
final class HDF5Handle {
    let id: hid_t
    private let closer: (hid_t) -> herr_t
    private var isOpen = true
    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.closer = close
    }
    /// Closes now; false when libhdf5 reports a failure (for a file: the final flush failed).
    @discardableResult
    func close() -> Bool {
        guard isOpen else { return true }
        isOpen = false
        return closer(id) >= 0
    }
    deinit { close() }
}

/// An open HDF5 file (HDF5's serial library: use from one thread at a time).
///
/// Everything read is checked before libhdf5 is asked to copy it: shapes and byte counts by
/// checked arithmetic and bounded by the file's size, ranks bounded, datatypes matched against
/// what the caller asked for, soft and external links refused (an external link names another
/// file, possibly a FIFO or a device).
public final class HDF5File {
    public let path: String
    /// Size in bytes when opened for reading; no dataset or attribute can hold more than this.
    public let size: Int
    let handle: HDF5Handle
    /// What one object can hold at most: the file's size (no bound while writing a new file).
    var byteLimit: Int { size > 0 ? size : Int.max }

    private static let setup: Void = { finch_h5_silence_errors() }()

    /// Opens an existing file read-only. Directories, FIFOs and devices are refused before
    /// libhdf5 sees the path (it would block on a FIFO).
    public init(reading url: URL) throws {
        _ = Self.setup
        path = url.path
        do {
            size = try InputFile.requireRegular(path, what: "HDF5 file")
        } catch let e as InputFileError {
            switch e {
            case .missing: throw HDF5Error.cannotOpen(file: path, reason: "no such file")
            case .notRegular(_, let kind, _): throw HDF5Error.cannotOpen(file: path, reason: "it is a \(kind), not a regular file")
            case .unreadable(_, _, let reason): throw HDF5Error.cannotOpen(file: path, reason: reason)
            case .tooLarge: throw HDF5Error.cannotOpen(file: path, reason: "\(e)")
            }
        }
        guard H5Fis_hdf5(path) > 0 else { throw HDF5Error.cannotOpen(file: path, reason: "not an HDF5 file") }
        try HDF5Probe.check(path: path, size: size)
        let id = H5Fopen(path, finch_h5f_acc_rdonly(), finch_h5p_default())
        guard id >= 0 else {
            let failure = hdf5Failure(file: path, path: "/", operation: "open")
            if case .corrupted = failure { throw failure }
            throw HDF5Error.cannotOpen(file: path, reason: "HDF5 could not open it" + (hdf5ErrorMessages().first.map { ": \($0)" } ?? ""))
        }
        handle = HDF5Handle(id, close: H5Fclose)
        try checkStructure()
    }

    /// Loads every object header and group index once, so a checksum mismatch in metadata is
    /// refused at open, naming the object, instead of making an object look absent later
    /// (`isGroup` and `contains` answer false when libhdf5 cannot read a header). Tensor data
    /// is checked by its own checksum whenever it is read; `HDF5Group.verifyData` reads it all.
    private func checkStructure() throws {
        var visited = Set<haddr_t>()
        var info = H5O_info_t()
        guard H5Oget_info2(handle.id, &info, finch_h5o_info_all()) >= 0 else {
            throw hdf5Failure(file: path, path: "/", operation: "read the root group's header")
        }
        visited.insert(info.addr)
        func visit(_ g: HDF5Group, depth: Int) throws {
            guard depth <= HDF5Group.maxDepth else {
                throw HDF5Error.malformed(file: path, path: g.path, reason: "groups are nested more than \(HDF5Group.maxDepth) deep")
            }
            for name in try g.memberNames() {
                var link = H5L_info_t()
                guard H5Lget_info(g.handle.id, name, &link, finch_h5p_default()) >= 0 else {
                    throw hdf5Failure(file: path, path: g.child(name), operation: "read the link")
                }
                guard link.type == H5L_TYPE_HARD else { continue }
                guard H5Oget_info_by_name2(g.handle.id, name, &info, finch_h5o_info_all(), finch_h5p_default()) >= 0 else {
                    throw hdf5Failure(file: path, path: g.child(name), operation: "read the object header")
                }
                guard visited.insert(info.addr).inserted else { continue }
                guard visited.count <= byteLimit / 32 else {
                    throw HDF5Error.malformed(file: path, path: g.path, reason: "more objects than \(size) bytes can hold")
                }
                if info.type == H5O_TYPE_GROUP { try visit(try g.group(name), depth: depth + 1) }
            }
        }
        try visit(root, depth: 0)
    }

    /// Creates (truncating) a file. Prefer `writeAtomically`, which never leaves a partial file.
    public init(creating url: URL) throws {
        _ = Self.setup
        path = url.path
        size = 0
        let fapl = try Self.checksummedFileAccess(file: path)
        defer { H5Pclose(fapl) }
        let id = H5Fcreate(path, finch_h5f_acc_trunc(), finch_h5p_default(), fapl)
        guard id >= 0 else {
            throw HDF5Error.cannotCreate(file: path, reason: hdf5ErrorMessages().first ?? String(cString: strerror(errno)))
        }
        handle = HDF5Handle(id, close: H5Fclose)
    }

    /// A file built in memory (libhdf5's core driver, no backing store), to be written out as
    /// one image: closing it never touches the disk, so it cannot fail halfway. `path` is the
    /// destination, for messages.
    private init(inMemoryFor destination: String) throws {
        _ = Self.setup
        path = destination
        size = 0
        let fapl = try Self.checksummedFileAccess(file: path)
        defer { H5Pclose(fapl) }
        guard H5Pset_fapl_core(fapl, 16 << 20, false) >= 0 else {
            throw HDF5Error.cannotCreate(file: path, reason: "cannot select libhdf5's in-memory driver")
        }
        // The name only identifies the image inside libhdf5 (unique, so two writes of one
        // destination never meet there); nothing is created under it.
        let id = H5Fcreate("\(destination).\(UInt64.random(in: .min ... .max)).in-memory", finch_h5f_acc_trunc(), finch_h5p_default(), fapl)
        guard id >= 0 else { throw HDF5Error.cannotCreate(file: path, reason: hdf5ErrorMessages().first ?? "libhdf5 failed") }
        handle = HDF5Handle(id, close: H5Fclose)
    }

    private static func checksummedFileAccess(file: String) throws -> hid_t {
        let fapl = H5Pcreate(finch_h5p_file_access_class())
        guard fapl >= 0 else { throw HDF5Error.cannotCreate(file: file, reason: "no file-access property list") }
        // Format 1.10 objects carry checksums: superblock v3, version-2 object headers (and so
        // every attribute and compact dataset in them), and the single-chunk index, whose
        // chunk's Fletcher32 sum covers the data. Debian 12's libhdf5 1.10.8 and h5py read them.
        guard H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0,
              // Closing the file closes every object still open in it.
              H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 else {
            H5Pclose(fapl)
            throw HDF5Error.cannotCreate(file: file, reason: "cannot set file-access properties")
        }
        return fapl
    }

    public var root: HDF5Group { HDF5Group(file: self, handle: handle, path: "/") }

    /// Closes every object of the file that is still open (groups, datasets, attributes, types),
    /// then the file. After a failed write this is what keeps libhdf5 from finding a half-open
    /// file at process exit. Returns false when libhdf5 reported a failure along the way.
    @discardableResult
    func closeEverything() -> Bool {
        let count = H5Fget_obj_count(handle.id, finch_h5f_obj_open_objects())
        var ok = true
        if count > 0 {
            var ids = [hid_t](repeating: -1, count: count)
            let n = H5Fget_obj_ids(handle.id, finch_h5f_obj_open_objects(), count, &ids)
            for id in ids.prefix(max(0, n)) where id >= 0 {
                switch H5Iget_type(id) {
                case H5I_DATASET: ok = H5Dclose(id) >= 0 && ok
                case H5I_GROUP: ok = H5Gclose(id) >= 0 && ok
                case H5I_ATTR: ok = H5Aclose(id) >= 0 && ok
                case H5I_DATATYPE: ok = H5Tclose(id) >= 0 && ok
                default: break
                }
            }
        }
        return handle.close() && ok
    }

    /// How many HDF5 objects (files included) are open in this process; for tests of the
    /// failure paths.
    static func openObjectCount() -> Int {
        H5Fget_obj_count(finch_h5f_obj_all(), UInt32(truncatingIfNeeded: finch_h5f_obj_all()))
    }

    /// Writes a new file at `url`: `body` builds it in memory, then its image goes to a
    /// temporary file in the same folder that is synced and renamed over `url`
    /// (`AtomicFileOutput`). A crash or an error at any point leaves the previous file intact,
    /// no partial or temporary one, and no HDF5 object open.
    ///
    /// Building in memory is what makes a full disk harmless: when libhdf5 writes a file
    /// itself and a write fails, its `H5Fclose` fails halfway and leaves a freed file in its
    /// table, which crashes its exit-time shutdown (libhdf5 1.10). Here only Finch's own
    /// write loop touches the disk. The cost is one in-memory copy of the checkpoint.
    public static func writeAtomically(to url: URL, _ body: (HDF5Group) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw HDF5Error.cannotCreate(file: url.path, reason: "folder \(dir.path) does not exist")
        }
        let file = try HDF5File(inMemoryFor: url.path)
        defer { file.closeEverything() }
        try body(file.root)
        guard H5Fflush(file.handle.id, H5F_SCOPE_GLOBAL) >= 0 else { throw hdf5Failure(file: url.path, path: "/", operation: "flush") }
        let size = H5Fget_file_image(file.handle.id, nil, 0)
        guard size > 0 else { throw hdf5Failure(file: url.path, path: "/", operation: "build the file image") }
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { image.deallocate() }
        guard H5Fget_file_image(file.handle.id, image.baseAddress, size) == size else {
            throw hdf5Failure(file: url.path, path: "/", operation: "copy the file image")
        }
        guard HDF5FileImage.repairSuperblockChecksum(image) else {
            throw HDF5Error.cannotCreate(file: url.path, reason: "libhdf5's file image does not start with the expected superblock")
        }
        // Free libhdf5's copy before the disk write.
        guard file.closeEverything() else { throw hdf5Failure(file: url.path, path: "/", operation: "close") }
        do {
            try AtomicFileOutput.write(to: url.path) { try $0.write(UnsafeRawBufferPointer(image)) }
        } catch SafeTensorsError.writeFailed(_, let reason) {
            throw HDF5Error.cannotCreate(file: url.path, reason: reason)
        }
    }
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

    /// Finch's tensors have at most 6 dimensions; HDF5 allows 32. Anything more is refused.
    public static let maxRank = 32
    /// Bounds one object's member or attribute count and a name's length; a file claiming more
    /// than its size allows is malformed anyway.
    static let maxNameLength = 1 << 16
    /// Finch nests groups four deep; a deeper (or cyclic) tree is refused rather than recursed.
    static let maxDepth = 64

    func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    // MARK: Structure

    public func createGroup(_ name: String) throws -> HDF5Group {
        let id = H5Gcreate2(handle.id, name, intermediateGroups(), finch_h5p_default(), finch_h5p_default())
        guard id >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "create group") }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    public func group(_ name: String) throws -> HDF5Group {
        try requireKind(name, H5O_TYPE_GROUP, "a group")
        let id = H5Gopen2(handle.id, name, finch_h5p_default())
        guard id >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "open group") }
        return HDF5Group(file: file, handle: HDF5Handle(id, close: H5Gclose), path: child(name))
    }

    /// True when every level of `name` is a hard link (soft and external links do not count).
    public func contains(_ name: String) -> Bool {
        if case .object = found(name) { return true }
        return false
    }

    public func isGroup(_ name: String) -> Bool { kind(name) == H5O_TYPE_GROUP }
    public func isDataset(_ name: String) -> Bool { kind(name) == H5O_TYPE_DATASET }

    /// Names of the direct members, in HDF5's name order.
    public func memberNames() throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(handle.id, &info) >= 0 else {
            throw hdf5Failure(file: file.path, path: path, operation: "list members")
        }
        guard info.nlinks <= UInt64(file.byteLimit) else {
            throw HDF5Error.malformed(file: file.path, path: path, reason: "claims \(info.nlinks) members in a file of \(file.size) bytes")
        }
        return try (0..<info.nlinks).map { i in
            try boundedName(what: "member \(i)") { buf, n in
                H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, n, finch_h5p_default())
            }
        }
    }

    /// A name libhdf5 copies out: asks for the length first and refuses absurd ones.
    private func boundedName(what: String, _ get: (UnsafeMutablePointer<CChar>?, Int) -> Int) throws -> String {
        let n = get(nil, 0)
        guard n >= 0 else { throw hdf5Failure(file: file.path, path: path, operation: "read the name of \(what)") }
        guard n <= Self.maxNameLength, n <= file.byteLimit else {
            throw HDF5Error.malformed(file: file.path, path: path, reason: "the name of \(what) claims \(n) bytes")
        }
        var buf = [CChar](repeating: 0, count: n + 1)
        guard get(&buf, n + 1) >= 0 else { throw hdf5Failure(file: file.path, path: path, operation: "read the name of \(what)") }
        return String(decoding: buf.prefix(n).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private enum Found { case nothing, link(String), object(H5O_type_t), failed(HDF5Error) }

    private func found(_ name: String) -> Found {
        // Check each level so a missing intermediate group is not an HDF5 error, and only follow
        // hard links: an external link would make libhdf5 open a file the checkpoint names.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            let exists = H5Lexists(handle.id, prefix, finch_h5p_default())
            if exists == 0 { return .nothing }
            var link = H5L_info_t()
            guard exists > 0, H5Lget_info(handle.id, prefix, &link, finch_h5p_default()) >= 0 else {
                return .failed(hdf5Failure(file: file.path, path: child(prefix), operation: "look up"))
            }
            if link.type != H5L_TYPE_HARD { return .link(link.type == H5L_TYPE_SOFT ? "a soft link" : "an external link") }
        }
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(handle.id, name, &info, UInt32(H5O_INFO_BASIC), finch_h5p_default()) >= 0 else {
            return .failed(hdf5Failure(file: file.path, path: child(name), operation: "read the object header"))
        }
        return .object(info.type)
    }

    private func kind(_ name: String) -> H5O_type_t? {
        if case .object(let t) = found(name) { return t }
        return nil
    }

    private func requireKind(_ name: String, _ k: H5O_type_t, _ label: String) throws {
        switch found(name) {
        case .nothing: throw HDF5Error.missing(file: file.path, path: child(name))
        case .failed(let error): throw error
        case .link(let what): throw HDF5Error.wrongKind(file: file.path, path: child(name), expected: label, found: what)
        case .object(let t):
            guard t == k else {
                let what = t == H5O_TYPE_GROUP ? "a group" : t == H5O_TYPE_DATASET ? "a dataset" : "a named datatype"
                throw HDF5Error.wrongKind(file: file.path, path: child(name), expected: label, found: what)
            }
        }
    }

    /// One link-creation property list for the process: names with "/" create their parent groups.
    private static let linkCreation: hid_t = {
        let p = H5Pcreate(finch_h5p_link_create_default_class())
        H5Pset_create_intermediate_group(p, 1)
        return p
    }()

    private func intermediateGroups() -> hid_t { Self.linkCreation }

    // MARK: Writing datasets

    public func write(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int]) throws {
        try writeRaw(name, type: finch_h5t_native_float(), elementSize: 4, shape: shape, count: floats.count,
                     bytes: UnsafeRawPointer(floats.baseAddress))
    }

    public func write(_ name: String, tensor: Tensor) throws {
        try tensor.withContiguousBuffer { try write(name, floats: $0, shape: tensor.shape) }
    }

    public func write(_ name: String, int64s: [Int64], shape: [Int]? = nil) throws {
        try int64s.withUnsafeBytes {
            try writeRaw(name, type: finch_h5t_native_int64(), elementSize: 8, shape: shape ?? [int64s.count],
                         count: int64s.count, bytes: $0.baseAddress)
        }
    }

    public func write(_ name: String, doubles: [Double], shape: [Int]? = nil) throws {
        try doubles.withUnsafeBytes {
            try writeRaw(name, type: finch_h5t_native_double(), elementSize: 8, shape: shape ?? [doubles.count],
                         count: doubles.count, bytes: $0.baseAddress)
        }
    }

    /// A scalar variable-length UTF-8 string dataset (h5py reads it as `str` / bytes).
    public func write(_ name: String, string: String) throws {
        let type = finch_h5t_variable_string_utf8()
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let dcpl = try creationProperties(name, shape: [], elementSize: 16)
        defer { H5Pclose(dcpl) }
        let d = H5Dcreate2(handle.id, name, type, space, intermediateGroups(), dcpl, finch_h5p_default())
        guard d >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "create dataset") }
        let dataset = HDF5Handle(d, close: H5Dclose)
        let ok = string.withCString { cs -> Bool in
            var ptr: UnsafePointer<CChar>? = cs
            return H5Dwrite(d, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), &ptr) >= 0
        }
        guard ok else { throw hdf5Failure(file: file.path, path: child(name), operation: "write") }
        try HDF5Group(file: file, handle: dataset, path: child(name))
            .setAttribute(Self.datasetStringChecksum, .int64(Int64(Self.stringChecksum([Array(string.utf8)]))))
        guard dataset.close() else { throw hdf5Failure(file: file.path, path: child(name), operation: "close dataset") }
    }

    /// The largest chunk Finch writes: HDF5 chunks must stay below 4 GiB, and a chunk is
    /// read whole, so a bound keeps huge tensors from needing one giant buffer.
    static let maxChunkBytes = 1 << 30

    /// How a dataset is laid out so a flipped bit is detected. Scalars are compact (stored in the
    /// object header, which carries a checksum); non-empty arrays are chunked, one chunk for the
    /// whole tensor unless that exceeds `maxChunkBytes`, with libhdf5's Fletcher32 filter, which
    /// libhdf5 checks on every read and h5py understands. Empty arrays hold no data to protect.
    private func creationProperties(_ name: String, shape: [Int], elementSize: Int) throws -> hid_t {
        let dcpl = H5Pcreate(finch_h5p_dataset_create_class())
        guard dcpl >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "create dataset properties") }
        var ok = true
        if shape.isEmpty {
            ok = H5Pset_layout(dcpl, H5D_COMPACT) >= 0
        } else if !shape.contains(0) {
            var chunk = shape
            while let bytes = checkedByteCount(shape: chunk, elementSize: elementSize), bytes > Self.maxChunkBytes,
                  let largest = chunk.indices.max(by: { chunk[$0] < chunk[$1] }), chunk[largest] > 1 {
                chunk[largest] = (chunk[largest] + 1) / 2
            }
            var dims = chunk.map { hsize_t($0) }
            ok = H5Pset_chunk(dcpl, Int32(dims.count), &dims) >= 0 && H5Pset_fletcher32(dcpl) >= 0
        }
        guard ok else {
            H5Pclose(dcpl)
            throw hdf5Failure(file: file.path, path: child(name), operation: "set dataset layout")
        }
        return dcpl
    }

    private func writeRaw(_ name: String, type: hid_t, elementSize: Int, shape: [Int], count: Int, bytes: UnsafeRawPointer?) throws {
        ensure(shape.count <= Self.maxRank && checkedByteCount(shape: shape, elementSize: 1) == count,
                     "HDF5 write \(name): \(count) values for shape \(shape)")
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
        defer { H5Sclose(space) }
        let dcpl = try creationProperties(name, shape: shape, elementSize: elementSize)
        defer { H5Pclose(dcpl) }
        let d = H5Dcreate2(handle.id, name, type, space, intermediateGroups(), dcpl, finch_h5p_default())
        guard d >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "create dataset") }
        let dataset = HDF5Handle(d, close: H5Dclose)
        if count > 0 {
            guard H5Dwrite(d, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), bytes) >= 0 else {
                throw hdf5Failure(file: file.path, path: child(name), operation: "write")
            }
        }
        // A chunk small enough for the chunk cache reaches the file only when the dataset closes.
        guard dataset.close() else { throw hdf5Failure(file: file.path, path: child(name), operation: "close dataset") }
    }

    // MARK: Reading datasets

    /// Shape of a dataset.
    public func shape(_ name: String) throws -> [Int] {
        let d = try openDataset(name)
        return try withExtendedLifetime(d) { try checkedLayout(d, name).shape }
    }

    /// A float dataset (any IEEE width) as a float32 tensor.
    public func readTensor(_ name: String) throws -> Tensor {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let layout = try checkedLayout(d, name)
        try layout.require(H5T_FLOAT, "a float dataset", file: file.path, path: child(name))
        let t = Tensor(uninitializedShape: layout.shape)
        try read(d, name, type: finch_h5t_native_float(), into: UnsafeMutableRawPointer(t.basePointer), count: layout.count)
        return t
    }

    /// An integer dataset (any width up to 64 bits) as Int64s.
    public func readInt64s(_ name: String) throws -> [Int64] {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let layout = try checkedLayout(d, name)
        try layout.require(H5T_INTEGER, "an integer dataset", file: file.path, path: child(name))
        var out = [Int64](repeating: 0, count: layout.count)
        try out.withUnsafeMutableBytes { try read(d, name, type: finch_h5t_native_int64(), into: $0.baseAddress, count: layout.count) }
        return out
    }

    public func readDoubles(_ name: String) throws -> [Double] {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let layout = try checkedLayout(d, name)
        try layout.require(H5T_FLOAT, "a float dataset", file: file.path, path: child(name))
        var out = [Double](repeating: 0, count: layout.count)
        try out.withUnsafeMutableBytes { try read(d, name, type: finch_h5t_native_double(), into: $0.baseAddress, count: layout.count) }
        return out
    }

    /// A string dataset holding one string (variable or fixed length).
    public func readString(_ name: String) throws -> String {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let layout = try checkedLayout(d, name)
        try layout.require(H5T_STRING, "a string", file: file.path, path: child(name))
        guard layout.count == 1 else {
            throw HDF5Error.wrongKind(file: file.path, path: child(name), expected: "one string", found: "\(layout.count) strings")
        }
        let stored = HDF5Handle(H5Dget_type(d.id), close: H5Tclose)
        if H5Tis_variable_str(stored.id) > 0 {
            let type = HDF5Handle(finch_h5t_variable_string_utf8(), close: H5Tclose)
            var ptr: UnsafeMutablePointer<CChar>? = nil
            guard H5Dread(d.id, type.id, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), &ptr) >= 0 else {
                throw hdf5Failure(file: file.path, path: child(name), operation: "read")
            }
            let raw = ptr.map { p in Array(UnsafeRawBufferPointer(start: p, count: strlen(p))) } ?? []
            if let p = ptr { H5free_memory(p) }
            try verifyStringChecksum([raw], object: d, objectPath: child(name), checksumName: Self.datasetStringChecksum, at: child(name))
            return String(decoding: raw, as: UTF8.self)
        }
        // Fixed length: the size was bounded by the file's size in checkedLayout.
        var raw = [UInt8](repeating: 0, count: layout.elementSize)
        guard H5Dread(d.id, stored.id, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), &raw) >= 0 else {
            throw hdf5Failure(file: file.path, path: child(name), operation: "read")
        }
        let text = Array(raw.prefix { $0 != 0 })
        try verifyStringChecksum([text], object: d, objectPath: child(name), checksumName: Self.datasetStringChecksum, at: child(name))
        return String(decoding: text, as: UTF8.self)
    }

    /// Whether the object has an attribute `name` (false also when the table cannot be read;
    /// `attribute` then reports why).
    public func hasAttribute(_ name: String) -> Bool { H5Aexists(handle.id, name) > 0 }

    /// Dtype class of a dataset: "float32", "int64", "string" or "other" (for `finch inspect`).
    public func datasetTypeName(_ name: String) throws -> String {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let t = HDF5Handle(H5Dget_type(d.id), close: H5Tclose)
        guard t.id >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "read the datatype") }
        return Self.typeName(class: H5Tget_class(t.id), size: H5Tget_size(t.id))
    }

    static func typeName(class c: H5T_class_t, size: Int) -> String {
        switch c {
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_INTEGER: return "int\(size * 8)"
        case H5T_STRING: return "string"
        case H5T_COMPOUND: return "compound"
        case H5T_VLEN: return "variable-length"
        case H5T_ENUM: return "enum"
        case H5T_ARRAY: return "array"
        default: return "other"
        }
    }

    private func openDataset(_ name: String) throws -> HDF5Handle {
        try requireKind(name, H5O_TYPE_DATASET, "a dataset")
        let id = H5Dopen2(handle.id, name, finch_h5p_default())
        guard id >= 0 else { throw hdf5Failure(file: file.path, path: child(name), operation: "open dataset") }
        return HDF5Handle(id, close: H5Dclose)
    }

    /// A dataset's shape and type, validated: every value below came from the file.
    struct Layout {
        var shape: [Int]
        var count: Int
        var typeClass: H5T_class_t
        var elementSize: Int
        /// Whether libhdf5 verifies a Fletcher32 checksum when the data is read.
        var checksummed: Bool

        func require(_ c: H5T_class_t, _ label: String, file: String, path: String) throws {
            guard typeClass == c else {
                throw HDF5Error.wrongKind(file: file, path: path, expected: label,
                                          found: "a \(HDF5Group.typeName(class: typeClass, size: elementSize)) dataset")
            }
            if c == H5T_FLOAT || c == H5T_INTEGER, !(1...8).contains(elementSize) {
                throw HDF5Error.wrongKind(file: file, path: path, expected: label,
                                          found: "a \(elementSize)-byte \(HDF5Group.typeName(class: typeClass, size: elementSize)) dataset")
            }
        }
    }

    /// Compression may store more logical bytes than the file holds, but never more than
    /// deflate's best ratio (about 1032:1) allows.
    static let maxCompressionRatio = 1032

    func checkedLayout(_ d: HDF5Handle, _ name: String) throws -> Layout {
        let at = child(name)
        func malformed(_ reason: String) -> HDF5Error { .malformed(file: file.path, path: at, reason: reason) }
        let space = HDF5Handle(H5Dget_space(d.id), close: H5Sclose)
        guard space.id >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "read the dataspace") }
        let shape = try checkedExtent(space.id, malformed)
        let type = HDF5Handle(H5Dget_type(d.id), close: H5Tclose)
        guard type.id >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "read the datatype") }
        let typeClass = H5Tget_class(type.id)
        let elementSize = H5Tget_size(type.id)
        guard typeClass != H5T_NO_CLASS, elementSize > 0 else { throw malformed("its datatype cannot be read") }
        let dcpl = HDF5Handle(H5Dget_create_plist(d.id), close: H5Pclose)
        guard dcpl.id >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "read the creation properties") }
        var compressed = false, checksummed = false
        let filters = H5Pget_nfilters(dcpl.id)
        for i in 0..<max(0, filters) {
            var flags: UInt32 = 0, nValues = 0
            var nameBuffer = [CChar](repeating: 0, count: 64)
            let id = H5Pget_filter2(dcpl.id, UInt32(i), &flags, &nValues, nil, nameBuffer.count, &nameBuffer, nil)
            if id == H5Z_FILTER_FLETCHER32 { checksummed = true } else if id != H5Z_FILTER_SHUFFLE { compressed = true }
        }
        guard let count = checkedByteCount(shape: shape, elementSize: 1),
              let bytes = checkedByteCount(shape: shape, elementSize: elementSize) else {
            throw malformed("shape \(shape) of \(elementSize)-byte elements overflows a byte count")
        }
        let (limit, overflow) = file.byteLimit.multipliedReportingOverflow(by: compressed ? Self.maxCompressionRatio : 1)
        guard overflow || bytes <= limit else {
            throw malformed("shape \(shape) of \(elementSize)-byte elements needs \(bytes) bytes, more than the file's \(file.size) bytes can hold")
        }
        return Layout(shape: shape, count: count, typeClass: typeClass, elementSize: elementSize, checksummed: checksummed)
    }

    /// The dimensions of a dataspace; a null dataspace (no value at all) is refused.
    private func checkedExtent(_ space: hid_t, _ malformed: (String) -> HDF5Error) throws -> [Int] {
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR: return []
        case H5S_SIMPLE: break
        case H5S_NULL: throw malformed("it has a null dataspace (no value)")
        default: throw malformed("its dataspace cannot be read")
        }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard (0...Self.maxRank).contains(rank) else { throw malformed("rank \(rank) is not between 0 and \(Self.maxRank)") }
        var dims = [hsize_t](repeating: 0, count: rank)
        guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else { throw malformed("its dimensions cannot be read") }
        return try dims.map {
            guard let d = Int(exactly: $0) else { throw malformed("dimension \($0) is too large") }
            return d
        }
    }

    private func read(_ d: HDF5Handle, _ name: String, type: hid_t, into p: UnsafeMutableRawPointer?, count: Int) throws {
        guard count > 0 else { return }
        guard H5Dread(d.id, type, finch_h5s_all(), finch_h5s_all(), finch_h5p_default(), p) >= 0 else {
            throw hdf5Failure(file: file.path, path: child(name), operation: "read")
        }
    }

    // MARK: Checking every dataset

    /// Reads every dataset below this group (following hard links only, each object once) and
    /// every group's attributes, so a checksum mismatch anywhere (a string's CRC-32 included)
    /// surfaces as `HDF5Error.corrupted` naming the object.
    /// Returns how many datasets there are and how many of them carry a checksum.
    public func verifyData() throws -> (datasets: Int, checksummed: Int) {
        var visited = Set<haddr_t>()
        var datasets = 0, checksummed = 0
        func visit(_ g: HDF5Group, depth: Int) throws {
            guard depth <= Self.maxDepth else {
                throw HDF5Error.malformed(file: file.path, path: g.path, reason: "groups are nested more than \(Self.maxDepth) deep")
            }
            for a in g.attributeNames() {
                // Only damage matters here; an attribute without a value or of another type is
                // for its reader to refuse (`finch inspect` shows it as such).
                do { _ = try g.attribute(a) } catch let e as HDF5Error {
                    if case .corrupted = e { throw e }
                }
            }
            for name in try g.memberNames() {
                var info = H5O_info_t()
                guard g.contains(name),
                      H5Oget_info_by_name2(g.handle.id, name, &info, UInt32(H5O_INFO_BASIC), finch_h5p_default()) >= 0,
                      visited.insert(info.addr).inserted else { continue }
                if info.type == H5O_TYPE_GROUP {
                    try visit(try g.group(name), depth: depth + 1)
                } else if info.type == H5O_TYPE_DATASET {
                    datasets += 1
                    if try g.verifyDataset(name) { checksummed += 1 }
                }
            }
        }
        try visit(self, depth: 0)
        return (datasets, checksummed)
    }

    /// Reads one dataset's bytes in its stored type (variable-length strings through
    /// `readString`); true when a checksum was verified on the way.
    private func verifyDataset(_ name: String) throws -> Bool {
        let d = try openDataset(name)
        defer { withExtendedLifetime(d) {} }
        let layout = try checkedLayout(d, name)
        let stored = HDF5Handle(H5Dget_type(d.id), close: H5Tclose)
        if layout.typeClass == H5T_STRING, H5Tis_variable_str(stored.id) > 0 {
            guard layout.count == 1 else { return false }
            _ = try readString(name)
            return H5Aexists(d.id, Self.datasetStringChecksum) > 0
        }
        // Types that may hold variable-length parts (compound, array, vlen) would make libhdf5
        // allocate memory per element; Finch writes none of them, so they are not read here.
        guard [H5T_FLOAT, H5T_INTEGER, H5T_STRING].contains(layout.typeClass) else { return false }
        guard let bytes = checkedByteCount(shape: layout.shape, elementSize: layout.elementSize), bytes > 0 else { return layout.checksummed }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        defer { buffer.deallocate() }
        try read(d, name, type: stored.id, into: buffer, count: layout.count)
        return layout.checksummed
    }

    // MARK: Attributes

    public func setAttribute(_ name: String, _ value: HDF5AttributeValue) throws {
        let at = path + "@" + name
        if H5Aexists(handle.id, name) > 0, H5Adelete(handle.id, name) < 0 {
            throw hdf5Failure(file: file.path, path: at, operation: "replace attribute")
        }
        func create(_ type: hid_t, _ dims: [Int]?) throws -> HDF5Handle {
            var d = (dims ?? []).map { hsize_t($0) }
            let space = dims == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, nil)
            defer { H5Sclose(space) }
            let a = H5Acreate2(handle.id, name, type, space, finch_h5p_default(), finch_h5p_default())
            guard a >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "create attribute") }
            return HDF5Handle(a, close: H5Aclose)
        }
        var ok = true
        var attribute: HDF5Handle
        switch value {
        case .double(let v):
            var x = v
            attribute = try create(finch_h5t_native_double(), nil)
            ok = H5Awrite(attribute.id, finch_h5t_native_double(), &x) >= 0
        case .doubles(let v):
            attribute = try create(finch_h5t_native_double(), [v.count])
            ok = v.isEmpty || v.withUnsafeBytes { H5Awrite(attribute.id, finch_h5t_native_double(), $0.baseAddress) >= 0 }
        case .int64(let v):
            var x = v
            attribute = try create(finch_h5t_native_int64(), nil)
            ok = H5Awrite(attribute.id, finch_h5t_native_int64(), &x) >= 0
        case .int64s(let v):
            attribute = try create(finch_h5t_native_int64(), [v.count])
            ok = v.isEmpty || v.withUnsafeBytes { H5Awrite(attribute.id, finch_h5t_native_int64(), $0.baseAddress) >= 0 }
        case .string(let s):
            let type = finch_h5t_variable_string_utf8()
            defer { H5Tclose(type) }
            attribute = try create(type, nil)
            ok = s.withCString { cs in
                var p: UnsafePointer<CChar>? = cs
                return H5Awrite(attribute.id, type, &p) >= 0
            }
        case .strings(let ss):
            let type = finch_h5t_variable_string_utf8()
            defer { H5Tclose(type) }
            attribute = try create(type, [ss.count])
            let cstrings = ss.map { strdup($0) }
            defer { cstrings.forEach { free($0) } }
            var ptrs = cstrings.map { UnsafePointer($0) }
            ok = ss.isEmpty || H5Awrite(attribute.id, type, &ptrs) >= 0
        }
        guard ok else { throw hdf5Failure(file: file.path, path: at, operation: "write attribute") }
        guard attribute.close() else { throw hdf5Failure(file: file.path, path: at, operation: "close attribute") }
        let companion = name + Self.stringChecksumSuffix
        switch value {
        case .string(let s):
            try setAttribute(companion, .int64(Int64(Self.stringChecksum([Array(s.utf8)]))))
        case .strings(let ss):
            try setAttribute(companion, .int64(Int64(Self.stringChecksum(ss.map { Array($0.utf8) }))))
        default:
            if H5Aexists(handle.id, companion) > 0, H5Adelete(handle.id, companion) < 0 {
                throw hdf5Failure(file: file.path, path: path + "@" + companion, operation: "remove attribute")
            }
        }
    }

    // MARK: String checksums

    /// A string attribute `name` has its CRC-32 in the integer attribute `name` + this suffix,
    /// and a string dataset in its attribute `crc32`. The strings themselves live in HDF5's
    /// global heap, which carries no checksum; the integers live in object headers or attribute
    /// heaps, which do. Files without them (older Finch, other writers) are read unchecked.
    public static let stringChecksumSuffix = ".crc32"
    static let datasetStringChecksum = "crc32"

    /// The CRC-32 of strings as HDF5 stores them: each up to its first NUL (a C string),
    /// separated by a NUL so ["ab", "c"] and ["a", "bc"] differ.
    static func stringChecksum(_ strings: [[UInt8]]) -> UInt32 {
        var crc: UInt32 = 0
        for (i, s) in strings.enumerated() {
            if i > 0 { crc = CRC32.update(crc, [0]) }
            crc = CRC32.update(crc, s.prefix { $0 != 0 })
        }
        return crc
    }

    /// Compares the stored bytes of a string value with its checksum attribute `checksumName`
    /// on `object`, when there is one. `at` names the value for the error.
    private func verifyStringChecksum(_ strings: [[UInt8]], object: HDF5Handle, objectPath: String,
                                      checksumName: String, at: String) throws {
        let exists = H5Aexists(object.id, checksumName)
        guard exists >= 0 else { throw hdf5Failure(file: file.path, path: objectPath + "@" + checksumName, operation: "look up attribute") }
        guard exists > 0 else { return }
        let holder = HDF5Group(file: file, handle: object, path: objectPath)
        guard case .int64(let stored) = try holder.attribute(checksumName), let expected = UInt32(exactly: stored) else {
            throw HDF5Error.malformed(file: file.path, path: objectPath + "@" + checksumName, reason: "a string checksum must be one integer between 0 and 2^32-1")
        }
        let actual = Self.stringChecksum(strings)
        guard actual == expected else {
            throw HDF5Error.corrupted(file: file.path, path: at, detail: "its text has CRC-32 \(String(actual, radix: 16)), @\(checksumName) says \(String(expected, radix: 16))")
        }
    }

    /// Attribute names; an object whose attribute table cannot be read has none listed (reading
    /// any of them by name then reports the failure).
    public func attributeNames() -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(handle.id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0, info.num_attrs <= UInt64(file.byteLimit) else { return [] }
        let names = (0..<info.num_attrs).compactMap { i in
            try? boundedName(what: "attribute \(i)") { buf, n in
                H5Aget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, n, finch_h5p_default())
            }
        }
        // A string's checksum is part of that string, not a value of its own.
        let all = Set(names)
        return names.filter { !($0.hasSuffix(Self.stringChecksumSuffix) && all.contains(String($0.dropLast(Self.stringChecksumSuffix.count)))) }
    }

    /// An attribute's value. One without a value (a null dataspace), of a type other than
    /// numbers and strings, or larger than the file is an error, never a read past its end.
    public func attribute(_ name: String) throws -> HDF5AttributeValue {
        let at = path + "@" + name
        func malformed(_ reason: String) -> HDF5Error { .malformed(file: file.path, path: at, reason: reason) }
        let exists = H5Aexists(handle.id, name)
        guard exists >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "look up attribute") }
        guard exists > 0 else { throw HDF5Error.missing(file: file.path, path: at) }
        let a = HDF5Handle(H5Aopen(handle.id, name, finch_h5p_default()), close: H5Aclose)
        guard a.id >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "open attribute") }
        let t = HDF5Handle(H5Aget_type(a.id), close: H5Tclose)
        let space = HDF5Handle(H5Aget_space(a.id), close: H5Sclose)
        guard t.id >= 0, space.id >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "read attribute type") }
        let shape = try checkedExtent(space.id, malformed)
        let scalar = shape.isEmpty
        let size = H5Tget_size(t.id)
        let typeClass = H5Tget_class(t.id)
        guard size > 0 else { throw malformed("its datatype cannot be read") }
        guard let n = checkedByteCount(shape: shape, elementSize: 1),
              let bytes = checkedByteCount(shape: shape, elementSize: size), bytes <= file.byteLimit else {
            throw malformed("shape \(shape) of \(size)-byte elements is larger than the file")
        }
        func readInto(_ type: hid_t, _ p: UnsafeMutableRawPointer?) throws {
            guard n > 0 else { return }
            guard H5Aread(a.id, type, p) >= 0 else { throw hdf5Failure(file: file.path, path: at, operation: "read attribute") }
        }
        switch typeClass {
        case H5T_FLOAT where size <= 16:
            var v = [Double](repeating: 0, count: n)
            try v.withUnsafeMutableBytes { try readInto(finch_h5t_native_double(), $0.baseAddress) }
            return scalar ? .double(v[0]) : .doubles(v)
        case H5T_INTEGER where size <= 8:
            var v = [Int64](repeating: 0, count: n)
            try v.withUnsafeMutableBytes { try readInto(finch_h5t_native_int64(), $0.baseAddress) }
            return scalar ? .int64(v[0]) : .int64s(v)
        case H5T_STRING where H5Tis_variable_str(t.id) > 0:
            let type = HDF5Handle(finch_h5t_variable_string_utf8(), close: H5Tclose)
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            try ptrs.withUnsafeMutableBytes { try readInto(type.id, $0.baseAddress) }
            // Raw bytes first: the checksum covers what is stored, before any UTF-8 repair.
            let raw = ptrs.map { p in p.map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? [] }
            ptrs.forEach { if let p = $0 { H5free_memory(p) } }
            try verifyStringChecksum(raw, object: handle, objectPath: path, checksumName: name + Self.stringChecksumSuffix, at: at)
            let ss = raw.map { String(decoding: $0, as: UTF8.self) }
            return scalar ? .string(ss[0]) : .strings(ss)
        case H5T_STRING:
            // Fixed-length strings (as h5py writes numpy bytes): read raw and trim NULs.
            var raw = [UInt8](repeating: 0, count: bytes)
            try raw.withUnsafeMutableBytes { try readInto(t.id, $0.baseAddress) }
            let parts = (0..<n).map { i in Array(raw[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }) }
            try verifyStringChecksum(parts, object: handle, objectPath: path, checksumName: name + Self.stringChecksumSuffix, at: at)
            let ss = parts.map { String(decoding: $0, as: UTF8.self) }
            return scalar ? .string(ss[0]) : .strings(ss)
        default:
            throw HDF5Error.wrongKind(file: file.path, path: at, expected: "a number or string attribute",
                                      found: "a \(size)-byte \(Self.typeName(class: typeClass, size: size)) attribute")
        }
    }
}
