import XCTest
import Foundation
import FinchFuzzTargets

/// Replays the committed fuzz inputs through the same entry points the fuzzer drives
/// (`FuzzTarget.run`, in the plainly built `finch-fuzz`), one child process per file so a
/// crash is reported as a failure naming the file instead of ending the test run.
///
/// Tests/Fixtures/fuzz/corpus/<target>/ holds the seeds (valid files, which must keep being
/// read); Tests/Fixtures/fuzz/regressions/<target>/ holds every crasher, hang and runaway
/// allocation the fuzzer found. Each must now be refused with an error: exit 0, no signal,
/// within the time limit.
final class FuzzRegressionTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/fuzz").standardized
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../.build/debug/finch-fuzz").standardized
    /// Seeds take well under a second in a debug build; the fuzzer calls 10 s a hang.
    static let secondsPerInput: TimeInterval = 20

    func testSafeTensorsInputsAreReadOrRefused() throws { try replay(.safetensors) }
    func testTorchInputsAreReadOrRefused() throws { try replay(.pth) }
    func testHDF5InputsAreReadOrRefused() throws { try replay(.hdf5) }
    func testPNGInputsAreReadOrRefused() throws { try replay(.png) }
    func testJPEGInputsAreReadOrRefused() throws { try replay(.jpeg) }
    func testConfigInputsAreReadOrRefused() throws { try replay(.config) }

    /// The seeds are real files; if the harness stopped reaching the readers (say, a target
    /// refused everything early) replaying would pass vacuously, so each seed must be read,
    /// except those named "refused-…", which must be refused.
    func testEverySeedIsReadOrRefusedAsNamed() throws {
        for target in FuzzTarget.allCases {
            let seeds = files(in: "corpus/\(target.rawValue)")
            XCTAssertFalse(seeds.isEmpty, "no seeds for \(target)")
            for seed in seeds {
                let bytes = try Data(contentsOf: seed)
                if seed.lastPathComponent.hasPrefix("refused-") {
                    XCTAssertThrowsError(try target.run(bytes), "\(target) seed \(seed.lastPathComponent)")
                } else {
                    XCTAssertNoThrow(try target.run(bytes), "\(target) seed \(seed.lastPathComponent)")
                }
            }
        }
    }

    func replay(_ target: FuzzTarget) throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary.path), "finch-fuzz is not built")
        let inputs = files(in: "corpus/\(target.rawValue)") + files(in: "regressions/\(target.rawValue)")
        XCTAssertFalse(inputs.isEmpty)
        for input in inputs {
            let r = try runBounded(Self.binary, [target.rawValue, input.path], seconds: Self.secondsPerInput)
            let name = input.pathComponents.suffix(3).joined(separator: "/")
            if r.timedOut {
                XCTFail("\(name): still running after \(Int(Self.secondsPerInput)) s")
            } else if r.signalled {
                XCTFail("\(name): killed by signal \(r.status)\n\(r.output.suffix(2000))")
            } else {
                XCTAssertEqual(r.status, 0, "\(name):\n\(r.output.suffix(2000))")
            }
        }
    }

    func files(in folder: String) -> [URL] {
        let dir = Self.fixtures.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { dir.appendingPathComponent($0) }
    }

    func runBounded(_ executable: URL, _ args: [String], seconds: TimeInterval)
        throws -> (status: Int32, signalled: Bool, timedOut: Bool, output: String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        // A crash's message and signal are enough here; the full backtrace would bury them.
        p.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("finch-fuzz-replay-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline { timedOut = true; p.terminate(); break }
            usleep(10_000)
        }
        p.waitUntilExit()
        try handle.close()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal, timedOut, output)
    }
}
