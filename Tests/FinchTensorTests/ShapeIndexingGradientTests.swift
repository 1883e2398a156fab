import XCTest
@testable import FinchTensor

final class ShapeIndexingGradientTests: XCTestCase {
    var rng = TestRNG(13)

    func testViewsShareStorage() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        XCTAssertTrue(x.reshaped(6, 4).storage === x.storage)
        XCTAssertTrue(x.permuted(2, 0, 1).storage === x.storage)
        XCTAssertTrue(x.narrowed(axis: 2, start: 1, length: 2).storage === x.storage)
        XCTAssertTrue(x.unsqueezed(axis: 0).expanded(to: [5, 2, 3, 4]).storage === x.storage)
        XCTAssertFalse(x.permuted(2, 0, 1).isContiguous)
        XCTAssertEqual(x.permuted(2, 0, 1).contiguous().scalars.prefix(6), [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(x.transposed(0, 2).shape, [4, 3, 2])
        XCTAssertEqual(x.reshaped(-1, 4).shape, [6, 4])
        XCTAssertEqual(x.flattened(from: 1).shape, [2, 12])
        XCTAssertEqual(x.sliced(axis: 2, start: 0, end: 4, step: 2).scalars, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22])
        // Squeezing or unsqueezing a strided view stays a view (attention's q, k, v); other
        // reshapes of strided data still copy.
        let strided = x.permuted(1, 0, 2).narrowed(axis: 0, start: 1, length: 1)
        let squeezed = strided.squeezed(axis: 0)
        XCTAssertTrue(squeezed.storage === x.storage)
        XCTAssertEqual(squeezed.shape, [2, 4])
        XCTAssertEqual(squeezed.scalars, [4, 5, 6, 7, 16, 17, 18, 19])
        let unsqueezed = squeezed.unsqueezed(axis: 1).unsqueezed(axis: 3)
        XCTAssertTrue(unsqueezed.storage === x.storage)
        XCTAssertEqual(unsqueezed.shape, [2, 1, 4, 1])
        XCTAssertEqual(unsqueezed.scalars, [4, 5, 6, 7, 16, 17, 18, 19])
        XCTAssertFalse(x.permuted(2, 0, 1).reshaped(4, 6).storage === x.storage)
    }

    func testShapeOpGradients() {
        let x = rng.tensor([2, 3, 4])
        assertGradients([x]) { $0[0].reshaped(4, 6) * Tensor.arange(6) }
        assertGradients([x]) { $0[0].permuted(2, 0, 1).reshaped(4, 6) }
        assertGradients([x]) { $0[0].transposed(0, 1) }
        assertGradients([x]) { $0[0].flattened() }
        assertGradients([x]) { $0[0].narrowed(axis: 1, start: 1, length: 2) }
        assertGradients([x]) { $0[0].sliced(axis: 2, start: 1, end: 4, step: 2) }
        assertGradients([x]) { $0[0].split(sizes: [1, 2], axis: 1)[1] * 2 }
        assertGradients([x]) { $0[0].split(size: 3, axis: 2)[1] }
        assertGradients([x]) { $0[0].unsqueezed(axis: 1).expanded(to: [2, 5, 3, 4]) }
        assertGradients([x]) { $0[0].permuted(1, 0, 2).narrowed(axis: 0, start: 2, length: 1).squeezed(axis: 0) * 3 }
        assertGradients([x]) { $0[0].transposed(0, 2).unsqueezed(axis: 2) }
        assertGradients([x]) { $0[0].padded([(1, 2), (0, 1)], value: 3) }
        let y = rng.tensor([2, 1, 4]), z = rng.tensor([2, 2, 4])
        assertGradients([x, y, z]) { Tensor.concat($0, axis: 1) }
        let u = rng.tensor([2, 3, 4])
        assertGradients([x, u]) { Tensor.stack($0, axis: 1) }
        assertGradients([x, u]) { Tensor.stack($0, axis: -1) }
    }

    func testConcatStackPadValues() {
        let a = Tensor([1, 2], shape: [1, 2]), b = Tensor([3, 4, 5, 6], shape: [2, 2])
        XCTAssertEqual(Tensor.concat([a, b], axis: 0).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor.stack([a, a], axis: 0).shape, [2, 1, 2])
        XCTAssertEqual(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1).scalars, [1, 3, 2, 4])
        XCTAssertEqual(a.padded([(1, 1)], value: -1).scalars, [-1, 1, 2, -1])
        XCTAssertEqual(a.padded([(1, 0), (0, 1)]).scalars, [0, 0, 0, 1, 2, 0])
    }

    func testIndexSelectGatherOneHotTopK() {
        let x = Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        XCTAssertEqual(x.indexSelect(axis: 0, indices: [2, 0, 2]).scalars, [5, 6, 1, 2, 5, 6])
        XCTAssertEqual(x.indexSelect(axis: 1, indices: [1]).scalars, [2, 4, 6])
        XCTAssertEqual(x.gather(axis: 1, indices: [1, 0, 0], indexShape: [3, 1]).scalars, [2, 3, 5])
        XCTAssertEqual(Tensor.oneHot([2, 0], classes: 3).scalars, [0, 0, 1, 1, 0, 0])
        let (v, i) = Tensor([3, 1, 4, 1, 5, 9, 2, 6], shape: [2, 4]).topk(2)
        XCTAssertEqual(v.scalars, [4, 3, 9, 6])
        XCTAssertEqual(i, [2, 0, 1, 3])
        let (v0, i0) = Tensor([3, 1, 4, 1, 5, 9], shape: [3, 2]).topk(1, axis: 0)
        XCTAssertEqual(v0.scalars, [5, 9])
        XCTAssertEqual(i0, [2, 2])

        let y = rng.tensor([3, 4])
        assertGradients([y]) { $0[0].indexSelect(axis: 0, indices: [2, 0, 2]) }
        assertGradients([y]) { $0[0].indexSelect(axis: 1, indices: [3, 3, 1]) }
        assertGradients([y]) { $0[0].gather(axis: 1, indices: [0, 3, 1, 1, 2, 0], indexShape: [3, 2]) }
        assertGradients([y]) { $0[0].gather(axis: 0, indices: [2, 0, 1, 1], indexShape: [1, 4]) }
        assertGradients([y]) { $0[0].topk(2, axis: 1).values }
        assertGradients([y]) { $0[0].topk(2, axis: 0).values }
    }

    func testMatmulAndBatchedMatmul() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        XCTAssertEqual(a.matmul(b).scalars, [4, 5, 10, 11])
        XCTAssertEqual(a.transposed().transposed().matmul(b).scalars, [4, 5, 10, 11])
        XCTAssertEqual(b.transposed().matmul(a.transposed()).scalars, [4, 10, 5, 11])
        XCTAssertEqual(a.matmul(Tensor([1, 1, 1])).scalars, [6, 15])
        let x = rng.tensor([2, 3]), w = rng.tensor([4, 3])
        assertGradients([x, w]) { $0[0].matmul($0[1].transposed()) }      // Linear: x·Wᵀ
        let p = rng.tensor([2, 2, 3, 4]), q = rng.tensor([2, 2, 4, 5])
        assertGradients([p, q]) { $0[0].matmul($0[1]) }
        let r = rng.tensor([4, 5])
        assertGradients([p, r]) { $0[0].matmul($0[1]) }                    // broadcast batch
        let s = rng.tensor([2, 1, 5, 4])
        assertGradients([p, s]) { $0[0].matmul($0[1].transposed()) }       // transposed + broadcast
        let v = rng.tensor([4])
        assertGradients([p, v]) { $0[0].matmul($0[1]) }
    }
}
