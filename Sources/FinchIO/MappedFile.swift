#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SafeTensorsError.unreadable(file: path, reason: errnoText()) }
        defer { close(fd) }

        var info = stat()
        if fstat(fd, &info) != 0 { throw SafeTensorsError.unreadable(file: path, reason: errnoText()) }
        // Directories open fine and FIFOs would block or fail to map; say what the path is instead.
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError.unreadable(file: path, reason: "not a regular file")
        }
        size = Int(info.st_size)
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if mapped == MAP_FAILED || mapped == nil {
            throw SafeTensorsError.unreadable(file: path, reason: "mmap: " + errnoText())
        }
        base = UnsafeRawPointer(mapped!)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The mapped bytes in `range`, which callers have already checked lies within the file.
    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        guard let base, !range.isEmpty else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}

/// The current errno as text, e.g. "No such file or directory (errno 2)".
func errnoText(_ code: Int32 = errno) -> String {
    "\(String(cString: strerror(code))) (errno \(code))"
}
