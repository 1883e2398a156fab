import XCTest
@testable import FinchTensor

/// A reduction over a leading axis into few outputs (a broadcast add's gradient: many rows, a few
/// hundred columns) is split over the outputs by the number of additions, not of outputs; each
/// output must still add its rows in order, so the bits match a plain loop at any thread count.
final class ReductionThreadsTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.threads }
    override func tearDown() { Parallel.setThreads(savedThreads) }

    func testLeadingAxisSumAndMaxMatchRowOrderAtOneTwoAndThreeThreads() {
        var rng = RandomGenerator(seed: 3)
        // [rows, columns, inner]: few outputs with many rows; a middle axis; one output column.
        for shape in [[4096, 100], [700, 3, 37], [9000, 1], [5, 40_000]] {
            let x = Tensor.normal(shape, using: &rng)
            let v = x.scalars
            let rows = shape[0], cols = v.count / rows
            var sum = [Float](repeating: 0, count: cols), most = [Float](repeating: -.infinity, count: cols)
            for c in 0..<cols { sum[c] = v[c]; most[c] = v[c] }
            for r in 1..<rows {
                for c in 0..<cols {
                    sum[c] += v[r * cols + c]
                    most[c] = Swift.max(most[c], v[r * cols + c])
                }
            }
            for threads in [1, 2, 3] {
                Parallel.setThreads(threads)
                XCTAssertEqual(x.sum(axes: [0]).scalars, sum, "sum \(shape), \(threads) threads")
                XCTAssertEqual(x.max(axes: [0]).scalars, most, "max \(shape), \(threads) threads")
            }
        }
    }

    func testSplitsFewOutputsWithManyRowsOverThreads() {
        // 4096 rows into 64 outputs: 262 144 additions, enough for every thread.
        Parallel.setThreads(2)
        let x = Tensor(repeating: 1, shape: [4096, 64])
        Parallel.countPoolStats(true)
        let before = Parallel.poolStats
        let s = x.sum(axes: [0])
        let d = Parallel.poolStats - before
        Parallel.countPoolStats(false)
        XCTAssertEqual(s.scalars, Array(repeating: 4096, count: 64))
        XCTAssertEqual(d.loops, 1, "the reduction must run as one parallel loop, not on the calling thread")
        XCTAssertEqual(d.parts, 4, "64 outputs in parts of at least 16")
    }
}
