import XCTest
import Foundation
import FinchTensor
@testable import FinchIO

/// libhdf5 1.10.8 crashes or loops on some crafted files (Tests/Fixtures/fuzz/regressions/hdf5);
/// HDF5File(reading:) first reads the file in a child process and refuses it when that child
/// dies or hangs, so the caller never meets the crash.
final class HDF5ProbeTests: XCTestCase {
    var dir: URL!
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/fuzz/regressions/hdf5").standardized

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-h5-probe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        HDF5Probe.cache.removeAll()
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func regression(_ prefix: String) throws -> URL {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path)
        let name = try XCTUnwrap(names.sorted().first { $0.hasPrefix(prefix) }, "no regression file \(prefix)*")
        return Self.regressions.appendingPathComponent(name)
    }

    func size(_ url: URL) throws -> Int { try XCTUnwrap(try url.resourceValues(forKeys: [.fileSizeKey]).fileSize) }

    /// Whether libhdf5 crashes on these, and with which signal, depends on what its heap held
    /// (use of freed or uninitialised memory): `finch inspect` sees the child crash on all of
    /// them, this test process may see libhdf5 report errors instead. Either way the caller
    /// gets an error, and a crash in the child is refused before libhdf5 opens the file here.
    func testFilesThatCrashLibHDF5AreRefusedBeforeItOpensThem() throws {
        for prefix in ["segv-attribute-table-release", "segv-global-heap-vlen-string", "asan-memcpy-overlap-global-heap",
                       "asan-heap-overflow-attribute-decode"] {
            let url = try regression(prefix)
            let verdict = HDF5Probe.run(path: url.path, size: try size(url), timeout: 20)
            // Which signal ends the child also depends on the heap: glibc's allocator aborts
            // (SIGABRT) on some machines where others fault (SIGSEGV).
            let crashedOrRefused: Bool
            switch verdict {
            case .refused: crashedOrRefused = true
            case .crashed(let signal): crashedOrRefused = signal == SIGSEGV || signal == SIGABRT || signal == SIGBUS
            default: crashedOrRefused = false
            }
            XCTAssertTrue(crashedOrRefused, "\(prefix): \(verdict)")
            HDF5Probe.cache.removeAll()
            XCTAssertThrowsError(try { let f = try HDF5File(reading: url); _ = try f.root.verifyData() }(), prefix) { e in
                // The second read is a new child on a new heap: it may crash where the first
                // was refused, or the other way round; what must hold is a typed error.
                guard case .unsafe(let file, let reason)? = e as? HDF5Error else {
                    return XCTAssertTrue(e is HDF5Error, "\(prefix): \(e)")
                }
                XCTAssertEqual(file, url.path)
                XCTAssertTrue(reason.hasPrefix("libhdf5 crashed (signal "), reason)
                XCTAssertTrue("\(e)".contains("damaged or crafted"), "\(e)")
            }
        }
    }

    func testFilesOnWhichLibHDF5LoopsAreRefusedWithinTheDeadline() throws {
        for prefix in ["hang-global-heap-2cff1a01", "hang-global-heap-71788831"] {
            let url = try regression(prefix)
            let started = Date()
            XCTAssertThrowsError(try HDF5File(reading: url), prefix) { e in
                guard case .unsafe(_, let reason)? = e as? HDF5Error else { return XCTFail("\(prefix): \(e)") }
                XCTAssertTrue(reason.contains("did not finish"), reason)
            }
            let seconds = Date().timeIntervalSince(started)
            XCTAssertLessThan(seconds, HDF5Probe.deadline(forSize: try size(url)) + 2, prefix)
            // The verdict is remembered: the next reader of the unchanged file does not wait again.
            let again = Date()
            XCTAssertThrowsError(try HDF5File(reading: url))
            XCTAssertLessThan(Date().timeIntervalSince(again), 1, prefix)
        }
    }

    func testAChildKilledByASignalIsReportedAsACrash() throws {
        let url = dir.appendingPathComponent("valid.h5")
        try HDF5IntegrityTests.writeCheckpointLike(url)
        let verdict = HDF5Probe.run(path: url.path, size: try size(url), timeout: 10, mode: .segfault)
        XCTAssertEqual(verdict, HDF5Probe.Verdict.crashed(signal: SIGSEGV))
        XCTAssertTrue(verdict.problem?.contains("libhdf5 crashed (signal 11") == true, "\(String(describing: verdict.problem))")
    }

    func testAChildStillRunningAtTheDeadlineIsKilled() throws {
        let url = dir.appendingPathComponent("valid.h5")
        try HDF5IntegrityTests.writeCheckpointLike(url)
        let started = Date()
        let verdict = HDF5Probe.run(path: url.path, size: try size(url), timeout: 0.5, mode: .spin)
        guard case .hung(let seconds) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertGreaterThanOrEqual(seconds, 0.5)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
    }

    func testAValidCheckpointPassesAndReadsAsWritten() throws {
        let url = dir.appendingPathComponent("valid.h5")
        try HDF5IntegrityTests.writeCheckpointLike(url)
        XCTAssertEqual(HDF5Probe.run(path: url.path, size: try size(url), timeout: 10), .ok)
        let root = try HDF5File(reading: url).root
        XCTAssertEqual(try root.readTensor("model/head.weight").scalars, HDF5IntegrityTests.weights)
        XCTAssertEqual(try root.readDoubles("metrics/val:top1"), [0.25, 0.5])
        XCTAssertEqual(try root.readString("config"), "seed: 1\n")
    }

    /// A remembered verdict belongs to the bytes it was given for: a file replaced at the same
    /// path is probed again.
    func testAVerdictIsNotReusedForAChangedFile() throws {
        let url = dir.appendingPathComponent("c.h5")
        try HDF5IntegrityTests.writeCheckpointLike(url)
        XCTAssertNoThrow(try HDF5File(reading: url))
        let first = try XCTUnwrap(HDF5Probe.identity(url.path))
        XCTAssertEqual(HDF5Probe.cache.lookup(first), .ok)
        // The same bytes written again still make a different file as far as the cache knows.
        let bytes = try Data(contentsOf: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: bytes)
        try handle.close()
        let second = try XCTUnwrap(HDF5Probe.identity(url.path))
        XCTAssertNotEqual(first, second)
        XCTAssertNil(HDF5Probe.cache.lookup(second))
        XCTAssertNoThrow(try HDF5File(reading: url))
        XCTAssertEqual(HDF5Probe.cache.lookup(second), .ok)
    }

    /// Damage libhdf5 reports as an error (not a crash) passes the probe, so the in-process
    /// reader still names the corrupted dataset.
    func testDamageLibHDF5ReportsStillNamesTheDataset() throws {
        let url = dir.appendingPathComponent("c.h5")
        try HDF5IntegrityTests.writeCheckpointLike(url)
        var bytes = try Data(contentsOf: url)
        let needle = HDF5IntegrityTests.weights.prefix(4).withUnsafeBytes { Data($0) }
        let at = try XCTUnwrap(bytes.range(of: needle)?.lowerBound)
        bytes[at + 9] ^= 0x10
        try bytes.write(to: url)
        XCTAssertEqual(HDF5Probe.run(path: url.path, size: bytes.count, timeout: 10), .refused)
        XCTAssertThrowsError(try HDF5File(reading: url).root.readTensor("model/head.weight")) { e in
            guard case .corrupted(_, let path, _)? = e as? HDF5Error else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "/model/head.weight")
        }
    }

    func testTheProbeCanBeSwitchedOffForTrustedFiles() {
        XCTAssertTrue(HDF5Probe.isEnabled)
        setenv("FINCH_HDF5_PROBE", "0", 1)
        defer { unsetenv("FINCH_HDF5_PROBE") }
        XCTAssertFalse(HDF5Probe.isEnabled)
    }

    /// The cost on a checkpoint of efficientnet_lite0's size (4.65 M floats, 18.6 MB, one
    /// dataset per tensor as Finch writes them).
    func testProbingAnEighteenMegabyteCheckpointTakesLittleTime() throws {
        let url = dir.appendingPathComponent("lite0-sized.h5")
        var remaining = 4_650_000
        try HDF5File.writeAtomically(to: url) { root in
            try root.setAttribute("format", .string("finch-checkpoint"))
            try root.setAttribute("classes", .strings((0..<102).map { "class \($0)" }))
            var i = 0
            while remaining > 0 {
                let n = min(remaining, [32, 1280, 9216, 147_456, 409_600][i % 5])
                try root.write("model/layer\(i).weight", tensor: Tensor((0..<n).map { Float($0 % 97) * 0.01 }, shape: [n]))
                remaining -= n
                i += 1
            }
        }
        let bytes = try size(url)
        XCTAssertGreaterThan(bytes, 18_000_000)
        var times: [Double] = []
        for _ in 0..<5 {
            let started = Date()
            XCTAssertEqual(HDF5Probe.run(path: url.path, size: bytes, timeout: 30), .ok)
            times.append(Date().timeIntervalSince(started))
        }
        let median = times.sorted()[2]
        print("HDF5 probe of a \(bytes)-byte checkpoint: median \(Int(median * 1000)) ms over 5 runs (\(times.map { Int($0 * 1000) }) ms)")
        XCTAssertLessThan(median, 2)
    }
}
