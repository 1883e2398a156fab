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
        XCTAssertEqual(ranges.count, 4 * Parallel.partsPerThread)
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

    func testLongRowsAreSplitAcrossThreads() {
        // Dense operands coalesce into one or two rows longer than the grain; the pieces of each
        // row must line up with every operand's offsets (here a broadcast row and a strided view).
        let n = 70_001
        let a = Tensor((0..<(2 * n)).map { Float($0 % 97) }, shape: [2, n])
        let row = Tensor((0..<n).map { Float($0 % 13) - 6 }, shape: [n])
        let sum = a + row
        let expectedSum = (0..<(2 * n)).map { Float($0 % 97) + Float($0 % n % 13) - 6 }
        XCTAssertEqual(sum.scalars, expectedSum)

        let acc = Tensor(repeating: 1, shape: [2, n])
        Kernels.addInPlace(acc, a)
        XCTAssertEqual(acc.scalars, (0..<(2 * n)).map { Float($0 % 97) + 1 })

        let columns = a.transposed().contiguous().transposed()  // [2, n] with strides [1, 2]
        XCTAssertEqual(columns.contiguous().scalars, a.scalars)
    }

    func testBatchedMatmulSplitByBatchEqualsEachProduct() {
        // Enough small products to go whole to each thread (Matmul's batch split).
        let (nb, m, k, n) = (9, 32, 24, 40)
        var rng = TestRNG(5)
        let a = Tensor((0..<(nb * m * k)).map { _ in rng.uniform(-1, 1) }, shape: [nb, m, k])
        let b = Tensor((0..<(nb * k * n)).map { _ in rng.uniform(-1, 1) }, shape: [nb, k, n])
        XCTAssertGreaterThanOrEqual(nb * m * n * k, Gemm.splitMinimumWork)
        let batched = a.matmul(b).scalars
        for i in 0..<nb {
            let single = a.narrowed(axis: 0, start: i, length: 1).squeezed(axis: 0)
                .matmul(b.narrowed(axis: 0, start: i, length: 1).squeezed(axis: 0)).scalars
            XCTAssertEqual(Array(batched[(i * m * n)..<((i + 1) * m * n)]), single, "product \(i)")
        }
        let av = a.scalars, bv = b.scalars
        for (i, r, c) in [(0, 0, 0), (4, 17, 23), (8, 31, 39)] {
            var ref = 0.0
            for j in 0..<k { ref += Double(av[(i * m + r) * k + j]) * Double(bv[(i * k + j) * n + c]) }
            XCTAssertEqual(Double(batched[(i * m + r) * n + c]), ref, accuracy: 1e-5)
        }
    }

    func testLoweringTheThreadCountLeavesExtraWorkersOut() {
        func threadsUsed() -> Int {
            let ids = Mutex<Set<UInt>>([])
            Parallel.forEach(64) { _ in
                ids.withLock { _ = $0.insert(UInt(pthread_self())) }
                usleep(300)
            }
            return ids.withLock { $0.count }
        }
        XCTAssertLessThanOrEqual(threadsUsed(), 4)  // setUp's four: three workers started
        Parallel.setThreads(2)
        for _ in 0..<5 { XCTAssertLessThanOrEqual(threadsUsed(), 2) }
    }

    func testWorkersThatWentToSleepWakeForTheNextLoop() {
        finch_pool_set_spin_ns(0)
        defer { finch_pool_set_spin_ns(200_000) }
        for n in [4, 9, 64, 3] {
            usleep(2000)
            XCTAssertEqual(visits(n), Array(repeating: 1, count: n))
        }
    }

    func testPoolStatsCountLoopsAndPartsOnlyWhileOn() {
        Parallel.countPoolStats(true)
        let before = Parallel.poolStats
        for _ in 0..<200 { XCTAssertEqual(visits(64), Array(repeating: 1, count: 64)) }
        let d = Parallel.poolStats - before
        XCTAssertEqual(d.loops, 200)
        XCTAssertEqual(d.parts, 200 * 4 * Parallel.partsPerThread)
        XCTAssertLessThanOrEqual(d.workerParts, d.parts)
        XCTAssertGreaterThan(d.loopSeconds, 0)
        XCTAssertLessThanOrEqual(d.joinSeconds, d.loopSeconds + 1e-9)
        XCTAssertGreaterThanOrEqual(d.serialSeconds, 0)
        XCTAssertGreaterThanOrEqual(d.workerBusySeconds, 0)
        XCTAssertEqual(d.unevenLoops, 0, "16 parts on 4 threads")

        let three = Parallel.poolStats
        XCTAssertEqual(visits(3), [1, 1, 1])
        let u = Parallel.poolStats - three
        XCTAssertEqual(u.loops, 1)
        XCTAssertEqual(u.unevenLoops, 1, "3 parts on 4 threads")
        XCTAssertEqual(u.unevenSeconds, u.loopSeconds, accuracy: 1e-9, "its one loop was uneven")
        Parallel.countPoolStats(false)

        let off = Parallel.poolStats
        for _ in 0..<20 { _ = visits(64) }
        XCTAssertEqual((Parallel.poolStats - off).loops, 0)
    }
}
