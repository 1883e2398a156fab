import Foundation
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
        // O_EXCL makes sure we never adopt someone else's file.
        var path = ""
        var descriptor: Int32 = -1
        for _ in 0..<8 {
            path = temporaryFilePath(for: destination)
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

/// A fresh temporary name next to `destination`: `.<name>.<pid>.<hex tag>.tmp`. The pid and a
/// random tag keep concurrent writers of one destination apart; the pid also lets
/// `removeStaleTemporaryFiles` tell a dead writer's leftovers from a live writer's file.
func temporaryFilePath(for destination: String) -> String {
    let slash = destination.lastIndex(of: "/")
    let directory = slash.map { String(destination[...$0]) } ?? ""
    let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
    let tag = String(UInt32.random(in: .min ... .max), radix: 16)
    return "\(directory).\(name).\(getpid()).\(tag).tmp"
}

/// The pid in a name made by `temporaryPath`, or nil when `fileName` is not one of Finch's
/// temporary files. (Finch versions before this one wrote HDF5 tags in decimal; decimal digits
/// are hex digits, so those match too.)
func temporaryFileWriter(_ fileName: String) -> pid_t? {
    guard fileName.hasPrefix("."), fileName.hasSuffix(".tmp") else { return nil }
    let parts = fileName.dropFirst().dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 3 else { return nil }
    let name = parts.dropLast(2), pidText = parts[parts.count - 2], tag = parts[parts.count - 1]
    guard !name.joined(separator: ".").isEmpty,
          (1...10).contains(tag.count), tag.allSatisfy({ $0.isHexDigit }),
          (1...10).contains(pidText.count), pidText.allSatisfy({ $0.isASCII && $0.isNumber }),
          let pid = pid_t(pidText), pid > 0 else { return nil }
    return pid
}

/// Removes the temporary files that writes killed before their rename left in `directory`
/// (Finch's own `.<name>.<pid>.<tag>.tmp` pattern, see `temporaryFilePath`, regular files only) and returns them.
///
/// A file is stale when its writer's pid is not a live process here *and* it has not been
/// modified for two minutes. The pid alone is not enough: a writer in another pid namespace
/// (a container) or on another host sharing the folder has a pid that looks dead from here,
/// but a live writer keeps modifying its file. A reused pid only makes a leftover stay until a
/// later call; this process's own files are never touched.
public func removeStaleTemporaryFiles(in directory: URL) -> [URL] {
    removeStaleTemporaryFiles(in: directory, quietFor: 120, now: Date())
}

func removeStaleTemporaryFiles(in directory: URL, quietFor minimumAge: TimeInterval, now: Date) -> [URL] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
    var removed: [URL] = []
    for name in names.sorted() {
        guard let pid = temporaryFileWriter(name), pid != getpid() else { continue }
        // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists).
        if kill(pid, 0) == 0 || errno != ESRCH { continue }
        let url = directory.appendingPathComponent(name)
        // attributesOfItem does not follow symlinks: a link named like ours is left alone.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              attributes[.type] as? FileAttributeType == .typeRegular,
              let modified = attributes[.modificationDate] as? Date,
              now.timeIntervalSince(modified) >= minimumAge else { continue }
        if unlink(url.path) == 0 { removed.append(url) }
    }
    return removed
}
