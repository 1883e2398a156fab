#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Output that appears at its destination whole or not at all.
///
/// Bytes go to a hidden temporary file in the destination's directory (same file system, so
/// the final rename is atomic); `commit` syncs and renames it over the destination. Any
/// failure removes the temporary file, so an interrupted save never leaves a truncated
/// checkpoint where a good one used to be.
final class AtomicFileOutput {
    let destination: String
    let temporaryPath: String
    private var fd: Int32
    private var staging: UnsafeMutableRawPointer
    private var staged = 0
    /// Large enough that write(2) calls are few, small enough not to matter next to the tensors.
    static let stagingSize = 1 << 20

    /// Runs `body` against a fresh temporary file and renames it to `destination` if `body`
    /// returns; otherwise removes it and rethrows.
    static func write(to destination: String, _ body: (AtomicFileOutput) throws -> Void) throws {
        let output = try AtomicFileOutput(destination: destination)
        do {
            try body(output)
            try output.commit()
        } catch {
            output.abandon()
            throw error
        }
    }

    private init(destination: String) throws {
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[...$0]) } ?? ""
        let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        // pid and a random tag keep concurrent writers of the same destination apart; O_EXCL
        // makes sure we never adopt someone else's file.
        var path = ""
        var descriptor: Int32 = -1
        for _ in 0..<8 {
            let tag = String(UInt32.random(in: .min ... .max), radix: 16)
            path = "\(directory).\(name).\(getpid()).\(tag).tmp"
            descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw SafeTensorsError.writeFailed(file: destination,
                                               reason: "cannot create temporary file \(path): \(errnoText())")
        }
        temporaryPath = path
        fd = descriptor
        staging = UnsafeMutableRawPointer.allocate(byteCount: Self.stagingSize, alignment: 64)
    }

    deinit {
        staging.deallocate()
        if fd >= 0 { close(fd) }
    }

    /// Appends bytes, going through the staging buffer only when they are small.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if staged + bytes.count <= Self.stagingSize {
            (staging + staged).copyMemory(from: base, byteCount: bytes.count)
            staged += bytes.count
            return
        }
        try flush()
        try writeAll(base, bytes.count)
    }

    /// Appends `count` elements of `elementSize` bytes produced by `fill`, which is handed a
    /// destination and the element range to encode there; for conversions that cannot be
    /// written straight from the source.
    func writeEncoded(count: Int, elementSize: Int,
                      _ fill: (UnsafeMutableRawPointer, Range<Int>) -> Void) throws {
        let perChunk = Self.stagingSize / elementSize
        var start = 0
        while start < count {
            if Self.stagingSize - staged < elementSize { try flush() }
            let n = min(perChunk, count - start, (Self.stagingSize - staged) / elementSize)
            fill(staging + staged, start..<(start + n))
            staged += n * elementSize
            start += n
        }
    }

    private func flush() throws {
        if staged > 0 { try writeAll(staging, staged) }
        staged = 0
    }

    private func writeAll(_ pointer: UnsafeRawPointer, _ count: Int) throws {
        var done = 0
        while done < count {
            let n = systemWrite(fd, pointer + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.writeFailed(file: destination, reason: "write to \(temporaryPath): \(errnoText())")
            }
            done += n
        }
    }

    private func commit() throws {
        try flush()
        // Without fsync a crash after the rename could leave the new name pointing at a file
        // whose data never reached the disk.
        if fsync(fd) != 0 {
            throw SafeTensorsError.writeFailed(file: destination, reason: "fsync \(temporaryPath): \(errnoText())")
        }
        let closed = close(fd)
        fd = -1
        if closed != 0 {
            throw SafeTensorsError.writeFailed(file: destination, reason: "close \(temporaryPath): \(errnoText())")
        }
        if rename(temporaryPath, destination) != 0 {
            throw SafeTensorsError.writeFailed(file: destination, reason: "rename from \(temporaryPath): \(errnoText())")
        }
    }

    private func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }
}

/// `write(2)`, named apart from the method of the same name.
@inline(__always)
private func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, pointer, count)
    #else
    return Darwin.write(fd, pointer, count)
    #endif
}
