import XCTest
@testable import FinchTensor

final class BlockPoolTests: XCTestCase {
    /// Floats in the smallest pooled storage.
    private let pooled = BlockPool.threshold / MemoryLayout<Float>.stride

    override func setUp() {
        TensorStorage.releaseCachedMemory()
    }

    func testRepeatedTrainingStepsReuseTheirBlocks() {
        var rng = RandomGenerator(seed: 3)
        // 2·8·64·64 floats = the pool's threshold, so activations and their gradients are pooled.
        let x = Tensor.normal([2, 8, 64, 64], using: &rng)
        let w = Tensor.normal([8, 8, 3, 3], std: 0.1, using: &rng).requiringGrad()
        var mappingsAfter: [Int] = []
        var grads: [[Float]] = []
        for _ in 0..<4 {
            let y = conv2d(x, weight: w, padding: (1, 1)).relu()
            (y * y).sum().backward()
            grads.append(w.grad!.scalars)
            w.grad = nil
            mappingsAfter.append(BlockPool.mappings)
        }
        XCTAssertGreaterThan(mappingsAfter[0], 0, "the step's large tensors should come from the pool")
        XCTAssertEqual(mappingsAfter[3], mappingsAfter[1], "steps after the first should map nothing new: \(mappingsAfter)")
        XCTAssertEqual(grads[3], grads[0], "reused blocks must not change results")
    }

    func testLiveBlocksAreDistinctAndKeepTheirContents() {
        let a = TensorStorage(count: pooled), b = TensorStorage(count: pooled)
        XCTAssertTrue(a.pointer + pooled <= b.pointer || b.pointer + pooled <= a.pointer, "live blocks overlap")
        a.pointer.update(repeating: 1, count: pooled)
        b.pointer.update(repeating: 2, count: pooled)
        XCTAssertEqual(a.pointer[pooled - 1], 1)
        XCTAssertEqual(b.pointer[0], 2)
        XCTAssertEqual(Int(bitPattern: a.pointer) % 64, 0, "pooled storage keeps 64-byte alignment")
    }

    func testNewBlocksStartAtDifferentOffsetsWithinAPage() {
        // Sizes no other test uses, so each is a new mapping.
        let blocks = (1...8).map { TensorStorage(count: pooled * 5 + $0 * BlockPool.granule / 4) }
        let offsets = Set(blocks.map { Int(bitPattern: $0.pointer) % 4096 })
        XCTAssertGreaterThan(offsets.count, 4, "pooled blocks should not all share one offset modulo 4 KiB: \(offsets)")
        for b in blocks { XCTAssertEqual(Int(bitPattern: b.pointer) % 64, 0) }
    }

    func testFreedBlockIsReusedForTheSameSize() {
        var first: UnsafeMutablePointer<Float>?
        do { first = TensorStorage(count: pooled * 3).pointer }
        let before = BlockPool.mappings
        let again = TensorStorage(count: pooled * 3)
        XCTAssertEqual(again.pointer, first, "the freed block of this size should be handed out again")
        XCTAssertEqual(BlockPool.mappings, before)
    }

    func testCachedBlocksAreUnmappedToStayWithinTheLimit() {
        let savedSlack = BlockPool.minimumSlack
        BlockPool.minimumSlack = 8 << 20
        defer { BlockPool.minimumSlack = savedSlack }
        let base = BlockPool.liveBytes
        // Make a peak of 40 blocks of one size, then free them: all 40 wait in the cache.
        let blockBytes = 1 << 20
        var held = (0..<40).map { _ in TensorStorage(count: blockBytes / 4) }
        held.removeAll()
        XCTAssertGreaterThanOrEqual(BlockPool.cachedBytes, 40 * blockBytes)
        // Sizes never seen before: each is a new mapping and must push cached blocks out.
        var others: [TensorStorage] = []
        for i in 0..<60 {
            others.append(TensorStorage(count: (blockBytes + (i + 1) * BlockPool.granule) / 4))
            XCTAssertLessThanOrEqual(BlockPool.liveBytes + BlockPool.cachedBytes, BlockPool.limit(peak: BlockPool.peakLiveBytes),
                                     "mapped bytes passed the limit after \(i + 1) new sizes")
        }
        XCTAssertLessThan(BlockPool.cachedBytes, 40 * blockBytes, "no cached block was unmapped")
        others.removeAll()
        TensorStorage.releaseCachedMemory()
        XCTAssertEqual(BlockPool.cachedBytes, 0)
        XCTAssertEqual(BlockPool.liveBytes, base)
    }

    func testOverTheLimitALargerCachedBlockIsCutDownInsteadOfMappingANewOne() {
        let savedSlack = BlockPool.minimumSlack
        BlockPool.minimumSlack = 1 << 20
        defer { BlockPool.minimumSlack = savedSlack }
        let large = (1 << 20) + 7 * BlockPool.granule, small = (1 << 20) + 3 * BlockPool.granule
        var held = (0..<16).map { _ in TensorStorage(count: large / 4) }
        held.removeAll()
        let mappingsBefore = BlockPool.mappings, trimsBefore = BlockPool.trims
        var others: [TensorStorage] = []
        for i in 0..<12 {
            let s = TensorStorage(count: small / 4)
            // Every byte of a cut-down block must still be mapped.
            s.pointer.update(repeating: Float(i), count: s.count)
            others.append(s)
            XCTAssertLessThanOrEqual(BlockPool.liveBytes + BlockPool.cachedBytes, BlockPool.limit(peak: BlockPool.peakLiveBytes))
        }
        XCTAssertGreaterThan(BlockPool.trims, trimsBefore, "no cached block was cut down")
        XCTAssertLessThan(BlockPool.mappings - mappingsBefore, 12, "every request past the limit mapped a new block")
        XCTAssertEqual(others[11].pointer[small / 4 - 1], 11)
        others.removeAll()
        // Cut-down blocks are cached at their new size, reused, and unmapped at that size.
        let mappingsAfter = BlockPool.mappings
        let again = TensorStorage(count: small / 4)
        again.pointer.update(repeating: 1, count: again.count)
        XCTAssertEqual(BlockPool.mappings, mappingsAfter)
        TensorStorage.releaseCachedMemory()
    }

    func testPeakLiveBytesFollowsTheHighestPoint() {
        TensorStorage.resetPeak()
        XCTAssertEqual(TensorStorage.peakLiveBytes, TensorStorage.liveBytes)
        let before = TensorStorage.liveBytes
        do { _ = TensorStorage(count: 1 << 20) }
        XCTAssertEqual(TensorStorage.liveBytes, before)
        XCTAssertGreaterThanOrEqual(TensorStorage.peakLiveBytes, before + (4 << 20), "the freed 4 MiB storage should stay in the peak")
        TensorStorage.resetPeak()
        XCTAssertEqual(TensorStorage.peakLiveBytes, before)
    }

    func testSmallStoragesStayOutOfThePool() {
        let before = BlockPool.liveBytes
        let small = TensorStorage(count: pooled - 1)
        XCTAssertEqual(BlockPool.liveBytes, before)
        let large = TensorStorage(count: pooled)
        XCTAssertEqual(BlockPool.liveBytes, before + BlockPool.rounded(pooled * 4))
        _ = (small, large)
    }

    func testARepeatedSequenceOfDifferentSizesMapsNothingAfterTheFirstRound() {
        let savedSlack = BlockPool.minimumSlack
        BlockPool.minimumSlack = 1 << 20
        defer { BlockPool.minimumSlack = savedSlack }
        let mib = (1 << 20) / 4
        var mappingsAfter: [Int] = []
        var values: [Float] = []
        for _ in 0..<4 {
            // Phases of one step, each holding about 8 MiB in blocks of its own size: a cache of
            // whole blocks by size would need all four sets at once, twice the limit.
            for (count, floats) in [(8, mib), (4, 2 * mib), (16, mib / 2), (3, 2 * mib + mib / 2 + 100)] {
                let held = (0..<count).map { _ in TensorStorage(count: floats) }
                for (i, s) in held.enumerated() { s.pointer.update(repeating: Float(i), count: s.count) }
                values.append(held.map { $0.pointer[$0.count - 1] + $0.pointer[0] }.reduce(0, +))
                XCTAssertLessThanOrEqual(BlockPool.residentBytes, BlockPool.limit(peak: BlockPool.peakLiveBytes))
            }
            mappingsAfter.append(BlockPool.mappings)
        }
        XCTAssertEqual(mappingsAfter[3], mappingsAfter[1], "rounds after the first should map nothing new: \(mappingsAfter)")
        XCTAssertEqual(Array(values[12..<16]), Array(values[0..<4]))
    }

    func testFreeRangesPastTheLimitAreReleasedAndServeLaterRequests() {
        let savedSlack = BlockPool.minimumSlack
        BlockPool.minimumSlack = 1 << 20
        defer { BlockPool.minimumSlack = savedSlack }
        let mib = (1 << 20) / 4
        // Sixteen 1 MiB blocks; freeing every other one leaves eight holes no 1.5 MiB block fits.
        var blocks = (0..<16).map { _ in TensorStorage(count: mib) }
        let holes = stride(from: 0, to: 16, by: 2).map { blocks[$0].pointer }
        blocks = stride(from: 1, to: 16, by: 2).map { blocks[$0] }
        let larger = (0..<6).map { _ in TensorStorage(count: mib * 3 / 2) }
        XCTAssertLessThanOrEqual(BlockPool.residentBytes, BlockPool.limit(peak: BlockPool.peakLiveBytes),
                                 "the holes should have been handed back to the kernel")
        #if os(Linux)
        XCTAssertTrue(holes.contains { !isResident($0, bytes: mib * 4) }, "no hole's pages were released")
        #endif
        // Requests of the holes' size take them again, with pages that hold what is written.
        let again = (0..<8).map { _ in TensorStorage(count: mib) }
        XCTAssertEqual(Set(again.map { $0.pointer }), Set(holes), "the holes should be reused")
        for (i, s) in again.enumerated() { s.pointer.update(repeating: Float(i), count: s.count) }
        for (i, s) in again.enumerated() { XCTAssertEqual(s.pointer[s.count - 1], Float(i)) }
        #if os(Linux)
        for s in again { XCTAssertTrue(isResident(s.pointer, bytes: mib * 4)) }
        #endif
        _ = (blocks, larger)
    }

    #if os(Linux)
    /// Whether every page of a range is in memory (mincore).
    private func isResident(_ p: UnsafeMutablePointer<Float>, bytes: Int) -> Bool {
        let page = 4096
        let start = Int(bitPattern: p) & ~(page - 1)
        let end = Int(bitPattern: p) + bytes
        let pages = (end - start + page - 1) / page
        var flags = [UInt8](repeating: 0, count: pages)
        guard mincore(UnsafeMutableRawPointer(bitPattern: start), end - start, &flags) == 0 else { return false }
        return flags.allSatisfy { $0 & 1 == 1 }
    }
    #endif
}
