#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FinchTensor

/// A read-only private mapping of a whole file, unmapped when the last reference goes.
///
/// A class so that copies of the value types built on it share one mapping and the
/// deinit runs exactly once. Mapping rather than reading means opening a large checkpoint
/// costs only the header pages until tensors are actually asked for.
///
/// One hazard no parser can guard against: if another process truncates the file while it
/// is mapped, touching the lost pages raises SIGBUS. Files are expected to be replaced by
/// rename (as Finch's writer does), which leaves this mapping on the old inode intact.
final class MappedFile: @unchecked Sendable {
    /// Start of the bytes; nil only for an empty file, which cannot be mapped.
    let base: UnsafeRawPointer?
    let size: Int
    /// True when the bytes are a private copy (from memory, not a file) to deallocate.
    private let owned: Bool

    /// Opens through `InputFile.openRegular`, so a directory, FIFO or device is refused before
    /// anything blocks or maps; those refusals and open/stat failures are `InputFileError`s
    /// (`what` names the file's role), an mmap failure is `.unreadable`.
    init(path: String, what: String) throws {
        let (fd, size) = try InputFile.openRegular(path, what: what)
        defer { close(fd) }
        self.size = size
        owned = false
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw InputFileError.unreadable(path: path, what: what, reason: "mmap: " + errnoText())
        }
        base = UnsafeRawPointer(mapped)
    }

    /// A copy of `bytes` standing in for a file, so every reader can also parse memory (fuzzing,
    /// archives inside archives) through the same checked code.
    init(copying bytes: UnsafeRawBufferPointer) {
        size = bytes.count
        owned = true
        guard let source = bytes.baseAddress, size > 0 else { base = nil; return }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        copy.copyMemory(from: source, byteCount: size)
        base = UnsafeRawPointer(copy)
    }

    deinit {
        guard let base else { return }
        if owned { UnsafeMutableRawPointer(mutating: base).deallocate() }
        else { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The mapped bytes in `range`, which callers have already checked lies within the file.
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        // A range outside the mapping would read other memory; every caller validated it, so
        // failing here is a bug, not bad input.
        ensure(range.lowerBound >= 0 && range.upperBound <= size, "MappedFile: range \(range) outside \(size) bytes")
        guard let base, !range.isEmpty else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}

/// The current errno as text, e.g. "No such file or directory (errno 2)".
func errnoText(_ code: Int32 = errno) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}

/// The first `count` bytes of a file (fewer if it is shorter), read without blocking on a FIFO
/// and refusing directories and devices, for sniffing a format.
func fileHead(_ path: String, count: Int, what: String) throws -> [UInt8] {
    let (fd, _) = try InputFile.openRegular(path, what: what)
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw InputFileError.unreadable(path: path, what: what, reason: errnoText()) }
        if n == 0 { break }
        done += n
    }
    return Array(head.prefix(done))
}

/// An `InputFileError` as a reason after a message's file name ("is a directory, not a regular
/// file"), for error types that carry the path separately.
func inputFileReason(_ error: InputFileError) -> String {
    switch error {
    case .missing: return "No such file or directory"
    case let .notRegular(_, kind, _): return "not a regular file (it is a \(kind))"
    case let .unreadable(_, _, reason): return reason
    case let .tooLarge(_, _, size, limit): return "\(size) bytes, more than the limit of \(limit) bytes"
    }
}
