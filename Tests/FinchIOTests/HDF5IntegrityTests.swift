import XCTest
import Foundation
import FinchTensor
import FinchTestSupport
@testable import FinchIO

/// Checkpoints written so damage is detected (checksummed metadata, a Fletcher32 sum per
/// tensor) and writes that fail leave nothing behind: no temporary file, no open HDF5 object,
/// no crash in libhdf5's shutdown at exit.
final class HDF5IntegrityTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-h5-integrity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Values no other part of the file contains, so the tensor's bytes can be found by search.
    static let weights = (0..<600).map { Float($0) * 0.731 + 12345.678 }

    static func writeCheckpointLike(_ url: URL) throws {
        try HDF5File.writeAtomically(to: url) { root in
            try root.setAttribute("format", .string("finch-checkpoint"))
            try root.setAttribute("epoch", .int64(3))
            try root.setAttribute("classes", .strings(["daisy", "rose"]))
            try root.write("config", string: "seed: 1\n")
            try root.write("model/head.weight", tensor: Tensor(Self.weights, shape: [20, 30]))
            try root.write("model/head.bias", tensor: Tensor([0.5, -0.5], shape: [2]))
            try root.write("model/bn.num_batches_tracked", int64s: [7], shape: [])
            try root.write("model/empty", tensor: Tensor(zeros: [0, 3]))
            try root.write("metrics/val:top1", doubles: [0.25, 0.5])
        }
    }

    func flipBit(_ url: URL, at offset: Int) throws {
        var bytes = try Data(contentsOf: url)
        bytes[offset] ^= 0x10
        try bytes.write(to: url)
    }

    func offsetOfWeights(in url: URL) throws -> Int {
        let bytes = try Data(contentsOf: url)
        let needle = Self.weights.prefix(4).withUnsafeBytes { Data($0) }
        return try XCTUnwrap(bytes.range(of: needle)?.lowerBound, "tensor bytes not found")
    }

    func testEveryNonEmptyArrayCarriesAChecksumThatH5pyAndH5dumpAccept() throws {
        let url = dir.appendingPathComponent("c.h5")
        try Self.writeCheckpointLike(url)
        let counts = try HDF5File(reading: url).root.verifyData()
        // The scalar step counter and the empty tensor carry none (config has its CRC-32).
        XCTAssertEqual(counts.datasets, 6)
        XCTAssertEqual(counts.checksummed, 4)
        guard try PythonTools.available(["h5py", "numpy"]) else { return }
        let script = """
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "r") as f:
            w = f["model/head.weight"]
            assert w.fletcher32 and w.chunks == (20, 30), (w.fletcher32, w.chunks)
            print(f.attrs["epoch"], list(f.attrs["classes"]), float(w[()].astype(np.float64).sum()), f["config"][()].decode())
        """
        let r = PythonTools.run(["-c", script, url.path])
        XCTAssertEqual(r.status, 0, r.output)
        let sum = Self.weights.reduce(0) { $0 + Double($1) }
        XCTAssertTrue(r.output.hasPrefix("3 ['daisy', 'rose'] "), r.output)
        XCTAssertEqual(Double(r.output.split(separator: " ")[3]) ?? 0, sum, accuracy: 1e-6 * sum, r.output)
        let dump = ChildProcess.run(URL(fileURLWithPath: "/usr/bin/h5dump"), ["-p", "-d", "/model/head.weight", url.path])
        XCTAssertEqual(dump.status, 0, dump.output)
        XCTAssertTrue(dump.output.contains("CHECKSUM FLETCHER32"), dump.output)
    }

    func testAFlippedBitInATensorIsRefusedNamingTheDataset() throws {
        let url = dir.appendingPathComponent("c.h5")
        try Self.writeCheckpointLike(url)
        try flipBit(url, at: try offsetOfWeights(in: url) + 1000)
        let r = try HDF5File(reading: url).root
        XCTAssertThrowsError(try r.readTensor("model/head.weight")) { e in
            guard case .corrupted(let file, let path, _)? = e as? HDF5Error else { return XCTFail("\(e)") }
            XCTAssertEqual(file, url.path)
            XCTAssertEqual(path, "/model/head.weight")
        }
        XCTAssertEqual(try r.readTensor("model/head.bias").scalars, [0.5, -0.5])
        XCTAssertThrowsError(try FileInspection.describe(url)) {
            XCTAssertTrue("\($0)".contains("'/model/head.weight' is corrupted"), "\($0)")
        }
        // The command says so too, with nothing from libhdf5 on stderr and a clean exit status.
        let finch = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/finch").standardized
        let cli = ChildProcess.run(finch, ["inspect", url.path])
        XCTAssertEqual(cli.status, 1, cli.output)
        XCTAssertTrue(cli.output.contains("'/model/head.weight' is corrupted, its checksum does not match"), cli.output)
        XCTAssertFalse(cli.output.contains("HDF5"), cli.output)
    }

    /// A flipped bit in an object header (where attributes, scalar datasets and the chunk index
    /// live) or in the superblock is caught by the format's metadata checksums.
    func testAFlippedBitInMetadataIsRefusedNamingTheFile() throws {
        let url = dir.appendingPathComponent("c.h5")
        try Self.writeCheckpointLike(url)
        let pristine = try Data(contentsOf: url)
        var headers: [Int] = []
        var from = pristine.startIndex
        while let r = pristine.range(of: Data("OHDR".utf8), in: from..<pristine.endIndex) {
            headers.append(r.lowerBound)
            from = r.upperBound
        }
        XCTAssertGreaterThanOrEqual(headers.count, 8, "one object header per group and dataset")
        for (i, offset) in ([8 + 5] + headers.map { $0 + 40 }).enumerated() {
            try pristine.write(to: url)
            try flipBit(url, at: offset)
            XCTAssertThrowsError(try HDF5File(reading: url), "flip \(i) at \(offset) went unnoticed") { e in
                guard case .corrupted(let file, _, let detail)? = e as? HDF5Error else { return XCTFail("flip \(i): \(e)") }
                XCTAssertEqual(file, url.path)
                XCTAssertTrue(detail.contains("checksum"), detail)
            }
            XCTAssertThrowsError(try FileInspection.describe(url)) { XCTAssertTrue("\($0)".contains("is corrupted"), "\($0)") }
        }
    }

    /// HDF5's metadata checksum, needed to repair the superblock of libhdf5 1.10.8's file images:
    /// Jenkins' published value, and the checksum libhdf5 writes itself into a file on disk.
    func testLookup3MatchesLibhdf5() throws {
        XCTAssertEqual(Array("Four score and seven years ago".utf8).withUnsafeBytes { HDF5FileImage.lookup3($0) }, 0x1777_0551)
        XCTAssertEqual([UInt8]().withUnsafeBytes { HDF5FileImage.lookup3($0) }, 0xdead_beef)
        let url = dir.appendingPathComponent("direct.h5")
        do {
            let f = try HDF5File(creating: url)
            try f.root.setAttribute("epoch", .int64(1))
        }
        let bytes = try Data(contentsOf: url)
        XCTAssertEqual(bytes[8], 3, "superblock version 3 (format 1.10)")
        let stored = bytes[44..<48].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        XCTAssertEqual(bytes.prefix(44).withUnsafeBytes { HDF5FileImage.lookup3($0) }, stored)
    }

    /// The file is built in memory: nothing appears in the folder until it is complete.
    func testNothingIsWrittenBeforeTheFileIsComplete() throws {
        let url = dir.appendingPathComponent("last.h5")
        var seen: [String] = ["unset"]
        try HDF5File.writeAtomically(to: url) { root in
            try root.write("model/w", tensor: Tensor(zeros: [256, 256]))
            seen = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        }
        XCTAssertEqual(seen, [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["last.h5"])
    }

    /// A body that throws while objects of the file are still referenced (a group kept outside)
    /// still gets every object closed and the temporary file removed.
    func testAFailedWriteClosesEveryObject() throws {
        let url = dir.appendingPathComponent("last.h5")
        try Self.writeCheckpointLike(url)
        let before = HDF5File.openObjectCount()
        struct Boom: Error {}
        var kept: HDF5Group?
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: url) { root in
            kept = try root.createGroup("optimizer")
            try root.write("model/x", tensor: Tensor([1, 2, 3]))
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertNotNil(kept)
        XCTAssertEqual(HDF5File.openObjectCount(), before, "objects of the failed file are still open")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["last.h5"])
        XCTAssertEqual(try HDF5File(reading: url).root.readTensor("model/head.bias").scalars, [0.5, -0.5])
        kept = nil
    }

    /// A write that runs out of space (a file-size limit, which fails write(2) like a full disk)
    /// reports the failure, keeps the previous file, removes the temporary one, and the process
    /// then exits normally: libhdf5's shutdown finds no half-closed file. Runs in a child process
    /// (this test binary again) because the point is how the process ends.
    func testAWriteThatRunsOutOfSpaceExitsCleanly() throws {
        if let target = ProcessInfo.processInfo.environment["FINCH_H5_FULL_DISK_DIR"] {
            return runOutOfSpace(in: URL(fileURLWithPath: target))
        }
        let good = dir.appendingPathComponent("last.h5")
        try Self.writeCheckpointLike(good)
        try Self.writeCheckpointLike(dir.appendingPathComponent("many.h5"))
        let r = ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"),
                                 ["FINCH_H5_FULL_DISK_DIR=\(dir.path)", ProcessInfo.processInfo.arguments[0],
                                  "FinchIOTests.HDF5IntegrityTests/testAWriteThatRunsOutOfSpaceExitsCleanly"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("big: \(good.path): cannot create (write to \(dir.path)/.last.h5."), r.output)
        XCTAssertTrue(r.output.contains("many: \(dir.path)/many.h5: cannot create ("), r.output)
        XCTAssertTrue(r.output.contains("File too large"), r.output)
        XCTAssertFalse(r.output.contains("no error"), r.output)
        XCTAssertFalse(r.output.contains("HDF5-DIAG"), r.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["last.h5", "many.h5"])
        for name in ["last.h5", "many.h5"] {
            XCTAssertEqual(try HDF5File(reading: dir.appendingPathComponent(name)).root.attribute("epoch"), .int64(3))
        }
    }

    private func runOutOfSpace(in target: URL) {
        signal(SIGXFSZ, SIG_IGN)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
        limit.rlim_cur = 256 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
        // One tensor larger than the limit (written through at once) ...
        do {
            try HDF5File.writeAtomically(to: target.appendingPathComponent("last.h5")) { root in
                try root.write("model/w", tensor: Tensor(zeros: [1024, 1024]))
            }
            print("big: no error")
        } catch { print("big: \(error)") }
        // ... and many small ones (libhdf5 would cache them and write them when closed).
        do {
            try HDF5File.writeAtomically(to: target.appendingPathComponent("many.h5")) { root in
                for i in 0..<200 {
                    try root.write("model/w\(i)", tensor: Tensor(zeros: [1000]))
                    try root.setAttribute("a\(i)", .strings(Array(repeating: "padding", count: 100)))
                }
            }
            print("many: no error")
        } catch { print("many: \(error)") }
    }
}
