import XCTest
import Foundation
import FinchTensor
@testable import FinchTrain

/// The bucket layout and start order of the overlapped reduction, the per-rank batch option and
/// the progress modes, without MPI.
final class GradientBucketsTests: XCTestCase {
    /// Records each started reduction's length and first element, and doubles the buffer (a
    /// 2-rank sum of equal gradients) when the reduction completes, which the buckets must wait for.
    final class RecordingCommunicator: Communicator {
        final class Pending: PendingCollective {
            let buffer: UnsafeMutableBufferPointer<Float>
            var done = false
            init(_ b: UnsafeMutableBufferPointer<Float>) { buffer = b }
            func test() -> Bool { wait(); return true }
            func wait() {
                if !done { for i in buffer.indices { buffer[i] *= 2 } }
                done = true
            }
        }
        var started: [[Float]] = []
        var rank: Int { 0 }
        var size: Int { 2 }
        var localRank: Int { 0 }
        var localSize: Int { 1 }
        func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { for i in buffer.indices { buffer[i] *= 2 } }
        func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
        func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
        func barrier() {}
        func allgather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes, bytes] }
        func allgatherConcatenated(_ values: UnsafeBufferPointer<Float>) -> [Float] { Array(values) + Array(values) }
        func abort(code: Int32) -> Never { fatalError("abort \(code)") }
        func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> PendingCollective {
            started.append(Array(buffer))
            return Pending(buffer)
        }
        var canOverlapOnCurrentThread: Bool { true }
    }

    /// Buckets hold the parameters in reverse registration order (4 floats each, a 6-float one
    /// alone); a bucket starts only when complete and after every earlier one, so a gradient
    /// reported early waits, and one never reported is sent as zeros at the end. Every
    /// parameter then holds the sum.
    func testBucketsStartInOrderWhenCompleteAndMissingGradientsAreZeros() {
        let p = [Tensor(zeros: [2]), Tensor(zeros: [2]), Tensor(zeros: [6]), Tensor(zeros: [1]), Tensor(zeros: [3])]
        for (i, t) in p.enumerated() { t.grad = Tensor(repeating: Float(i + 1), shape: t.shape) }
        let comm = RecordingCommunicator()
        let b = GradientBuckets(communicator: comm, capacity: 4)
        b.begin(p)
        // Reverse order: [p4 p3] [p2] [p1 p0].
        XCTAssertEqual(b.bucketCount, 3)
        b.gradientFinal(p[1])
        b.gradientFinal(p[2])   // bucket 1 complete, but bucket 0 has not started
        XCTAssertTrue(comm.started.isEmpty)
        b.gradientFinal(p[4])
        b.gradientFinal(p[3])
        XCTAssertEqual(comm.started, [[5, 5, 5, 4], [3, 3, 3, 3, 3, 3]])
        b.progress()
        p[0].grad = nil   // never reported: sent as zeros
        let t = b.finish(p, present: [true, true, true, true, true], backwardEnd: Date())
        XCTAssertEqual(comm.started.last, [2, 2, 0, 0])   // p1, then p0 as zeros
        XCTAssertEqual(p.map { $0.grad!.scalars }, [[0, 0], [4, 4], [6, 6, 6, 6, 6, 6], [8], [10, 10, 10]])
        XCTAssertGreaterThanOrEqual(t.total, t.exposed)
        // Absent on every rank: no gradient, as without overlap.
        b.begin(p)
        for q in p.dropFirst() { b.gradientFinal(q) }
        p[0].grad = nil
        _ = b.finish(p, present: [false, true, true, true, true], backwardEnd: Date())
        XCTAssertNil(p[0].grad)
        XCTAssertEqual(p[1].grad!.scalars, [8, 8])
    }

    /// `batch_size_per_rank` multiplies the batch by the ranks, within the batch limit (an
    /// error naming the key otherwise); without it, or in one process, the batch is unchanged.
    func testBatchSizePerRankGivesTheGlobalBatch() throws {
        var c = TrainConfig()
        c.data.batchSize = 8
        XCTAssertEqual(try TrainingSetup.globalBatch(c, ranks: 3).data.batchSize, 8)
        c.distributed.batchSizePerRank = true
        XCTAssertEqual(try TrainingSetup.globalBatch(c, ranks: 3).data.batchSize, 24)
        XCTAssertEqual(try TrainingSetup.globalBatch(c, ranks: 1).data.batchSize, 8)
        c.data.batchSize = TrainConfig.Limits.batchSize
        XCTAssertThrowsError(try TrainingSetup.globalBatch(c, ranks: 2)) { e in
            XCTAssertTrue("\(e)".contains("data.batch_size"), "\(e)")
        }
    }

    /// `FINCH_PROGRESS`: auto draws the bar on a terminal but prints lines under mpirun; bar and
    /// lines force one; anything else is refused with the variable named.
    func testProgressModes() throws {
        XCTAssertEqual(try ProgressMode.from([:]), .auto)
        XCTAssertEqual(try ProgressMode.from(["FINCH_PROGRESS": "bar"]), .bar)
        XCTAssertThrowsError(try ProgressMode.from(["FINCH_PROGRESS": "fancy"])) { XCTAssertTrue("\($0)".contains("FINCH_PROGRESS=fancy"), "\($0)") }
        XCTAssertTrue(ProgressMode.auto.drawsBar(onTerminal: true, underMPI: false))
        XCTAssertFalse(ProgressMode.auto.drawsBar(onTerminal: true, underMPI: true))
        XCTAssertTrue(ProgressMode.auto.plainLines(underMPI: true))
        XCTAssertFalse(ProgressMode.auto.plainLines(underMPI: false))
        XCTAssertTrue(ProgressMode.bar.drawsBar(onTerminal: true, underMPI: true))
        XCTAssertFalse(ProgressMode.bar.drawsBar(onTerminal: false, underMPI: false))
        XCTAssertFalse(ProgressMode.lines.drawsBar(onTerminal: true, underMPI: false))
    }

    /// Plain lines at each tenth of a 25-batch epoch (10 lines), for every epoch.
    func testPlainLinesAtEachTenthOfAnEpoch() {
        var lines: [String] = []
        let r = ProgressReporter(isTerminal: false, display: nil, plainLines: true, writeLine: { lines.append($0) })
        for epoch in 1...2 {
            for b in 1...25 { r.step(epoch: epoch, epochs: 2, batch: b, batches: 25, loss: 0.5, accuracy: nil, imagesPerSecond: 10, eta: 1) }
        }
        XCTAssertEqual(lines.count, 20, lines.joined(separator: "\n"))
        XCTAssertEqual(lines[0], "epoch 1/2  12% 3/25 loss 0.5000 10 img/s ETA 0:01")
        XCTAssertEqual(lines[9], "epoch 1/2 100% 25/25 loss 0.5000 10 img/s ETA 0:01")
        let quiet = ProgressReporter(isTerminal: false, display: nil, plainLines: false, writeLine: { lines.append($0) })
        quiet.step(epoch: 1, epochs: 1, batch: 1, batches: 1, loss: 0, accuracy: nil, imagesPerSecond: 0, eta: 0)
        XCTAssertEqual(lines.count, 20)
    }
}

extension GradientBucketsTests {
    /// The first bucket holds at most 1 MiB (DDP's first bucket), the others the configured size.
    func testFirstBucketIsSmall() {
        let p = [Tensor(zeros: [200_000]), Tensor(zeros: [200_000]), Tensor(zeros: [200_000])]
        let b = GradientBuckets(communicator: RecordingCommunicator(), capacity: 1 << 20)
        b.begin(p)
        XCTAssertEqual(b.bucketCount, 2)   // [p2] (a second would pass 262144 floats), [p1 p0]
    }
}
