#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a path named by a user (on the command line, in a config or inside a list file) cannot be read.
public enum InputFileError: Error, Equatable, CustomStringConvertible {
    case missing(path: String, what: String)
    /// A directory, FIFO, socket or device where a file was expected.
    case notRegular(path: String, kind: String, what: String)
    case unreadable(path: String, what: String, reason: String)
    case tooLarge(path: String, what: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case let .missing(path, what): return "\(what) '\(path)' does not exist"
        case let .notRegular(path, kind, what): return "\(what) '\(path)' is a \(kind), not a regular file"
        case let .unreadable(path, what, reason): return "\(what) '\(path)' cannot be read: \(reason)"
        case let .tooLarge(path, what, size, limit):
            return "\(what) '\(path)' is \(size) bytes, more than the limit of \(limit) bytes"
        }
    }
}

/// The one way Finch opens files that come from outside: refuse anything that is not a regular
/// file before reading, and never block. `open(2)` on a FIFO waits for a writer, so files are
/// opened non-blocking and checked with `fstat` on the descriptor that is then read (no race
/// between a check and the open).
public enum InputFile {
    /// The kind of a `stat` mode, in words, for messages.
    public static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "directory"
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        default: return "special file"
        }
    }

    /// Opens `path` read-only; the caller closes the descriptor. `what` names the file's role in
    /// messages ("weights file", "image", "config").
    public static func openRegular(_ path: String, what: String) throws -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw InputFileError.missing(path: path, what: what) }
            throw InputFileError.unreadable(path: path, what: what, reason: errnoDescription(code))
        }
        var info = stat()
        if fstat(fd, &info) != 0 {
            let code = errno
            close(fd)
            throw InputFileError.unreadable(path: path, what: what, reason: errnoDescription(code))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw InputFileError.notRegular(path: path, kind: kindName(info.st_mode), what: what)
        }
        // Reads of a regular file never block; clear the flag so they behave as usual.
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(info.st_size))
    }

    /// Throws unless `path` is a regular file; returns its size. For libraries that open the
    /// path themselves (libhdf5, libpng through a FILE*), call this first.
    @discardableResult
    public static func requireRegular(_ path: String, what: String) throws -> Int {
        let (fd, size) = try openRegular(path, what: what)
        close(fd)
        return size
    }

    /// The whole file, refused before any allocation when it is larger than `limit` bytes.
    public static func read(_ path: String, what: String, limit: Int) throws -> [UInt8] {
        let (fd, size) = try openRegular(path, what: what)
        defer { close(fd) }
        guard size <= limit else { throw InputFileError.tooLarge(path: path, what: what, size: size, limit: limit) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw InputFileError.unreadable(path: path, what: what, reason: errnoDescription(errno))
            }
            if n == 0 { break }  // The file shrank while being read: keep what is there.
            done += n
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    private static func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.read(fd, p, n)
        #else
        return Darwin.read(fd, p, n)
        #endif
    }

    static func errnoDescription(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }
}

/// The number of bytes of a tensor of `shape` with `elementSize`-byte elements, or nil when a
/// dimension is negative or the product overflows. Every byte count derived from a file goes
/// through here (or its own checked multiplication) before anything is allocated or read.
public func checkedByteCount(shape: [Int], elementSize: Int) -> Int? {
    guard elementSize >= 0 else { return nil }
    var count = elementSize
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = p
    }
    return count
}
