import CFinchKernels
import Dispatch
import Synchronization
import XCTest
@testable import FinchTensor

/// `Parallel.forEach` runs on persistent workers; these check that every index is covered exactly
/// once however the loops are issued: back to back, nested, and from several threads at once.
final class ParallelTests: XCTestCase {
    private var savedThreads = 1

    override func setUp() {
        savedThreads = Parallel.threads
        Parallel.setThreads(4)
    }

    override func tearDown() { Parallel.setThreads(savedThreads) }

    /// Counts how often each index of 0..<n is visited by one forEach.
    private func visits(_ n: Int, grain: Int = 1) -> [Int] {
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        Parallel.forEach(n, grain: grain) { r in for i in r { counts[i] += 1 } }
        return Array(counts)
    }

    func testEveryIndexOnceAcrossManyBackToBackLoops() {
        // Thousands of short loops: a worker that wakes late must not run a part twice or run an
        // old loop's part against a new loop's body.
        for round in 0..<3000 {
            let n = 1 + round % 37
            XCTAssertEqual(visits(n), Array(repeating: 1, count: n), "loop \(round), n = \(n)")
        }
    }

    func testPartsAreContiguousAndCoverTheRange() {
        let seen = Mutex<[Range<Int>]>([])
        Parallel.forEach(103) { r in seen.withLock { $0.append(r) } }
        let ranges = seen.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
        XCTAssertEqual(ranges.count, 4)
        XCTAssertEqual(ranges.first?.lowerBound, 0)
        XCTAssertEqual(ranges.last?.upperBound, 103)
        for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
    }

    func testGrainLimitsTheNumberOfParts() {
        let parts = Atomic<Int>(0)
        Parallel.forEach(10, grain: 5) { _ in parts.wrappingAdd(1, ordering: .relaxed) }
        XCTAssertEqual(parts.load(ordering: .relaxed), 2)
        XCTAssertEqual(visits(10, grain: 100), Array(repeating: 1, count: 10))
    }

    func testNestedLoopsRunSerially() {
        let n = 8, m = 50
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: n * m)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        Parallel.forEach(n) { outer in
            for i in outer {
                Parallel.forEach(m) { inner in for j in inner { counts[i * m + j] += 1 } }
            }
        }
        XCTAssertEqual(Array(counts), Array(repeating: 1, count: n * m))
    }

    func testLoopsFromSeveralThreadsAtOnce() {
        // One thread holds the pool; the others fall back to libdispatch. All must finish correct.
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 3) { t in
            for round in 0..<400 {
                let n = 5 + (round + t) % 29
                if visits(n) != Array(repeating: 1, count: n) { failures.wrappingAdd(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    }

    func testWorkersThatWentToSleepWakeForTheNextLoop() {
        finch_pool_set_spin_ns(0)
        defer { finch_pool_set_spin_ns(200_000) }
        for n in [4, 9, 64, 3] {
            usleep(2000)
            XCTAssertEqual(visits(n), Array(repeating: 1, count: n))
        }
    }
}
