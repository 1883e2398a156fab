import XCTest
import CFinchKernels
@testable import FinchTensor

/// finch_affine_silu_backward, BatchNorm+SiLU's gradient to z in one pass, against the two passes it
/// replaces on each path (the affine map into a buffer, then SiLU's backward): equal bits on avx2 and
/// avx512, nothing written past the end, and the generic path declines. Lengths end inside and at
/// vectors of 8 and 16; values cross the exponential's range and both signs of zero; dst = g too.
final class BatchNormSiLUBackwardTests: XCTestCase {
    func testFusedAgainstTwoPassesOnEachPath() {
        var rng = TestRNG(77)
        XCTAssertEqual(KernelPath.with(.generic) { finch_affine_silu_backward(nil, nil, nil, 0, 0, 1, 0) }, 0)
        let paths = KernelPath.supported.filter { $0 != .generic }
        XCTAssertFalse(paths.isEmpty, "CI's machines run the AVX2 path at least")
        for path in paths {
            for count in [1, 7, 8, 9, 15, 16, 17, 33, 49, 100] {
                var x = (0..<count).map { _ in rng.uniform(-12, 12) }
                for (k, v) in [Float(0), -0.0, -95, 95, .infinity, -.infinity].enumerated() where k < count { x[k] = v }
                let g = (0..<count).map { _ in rng.uniform(-2, 2) }
                for (mean, scale, shift) in [(Float(0.3), Float(1.7), Float(-0.4)), (0, 1, 0.25), (-1, 0.5, 0)] {
                    let label = "\(path) n=\(count) mean=\(mean) scale=\(scale) shift=\(shift)"
                    KernelPath.with(path) {
                        var z = [Float](repeating: 0, count: count)
                        var want = [Float](repeating: .nan, count: count + 3)
                        XCTAssertEqual(finch_affine_activation(x, &z, count, mean, scale, shift, 0), 1, label)
                        finch_silu_backward(g, z, &want, count)
                        var got = [Float](repeating: .nan, count: count + 3)
                        XCTAssertEqual(finch_affine_silu_backward(g, x, &got, count, mean, scale, shift), 1, label)
                        var inPlace = g + [.nan, .nan, .nan]
                        inPlace.withUnsafeMutableBufferPointer {
                            _ = finch_affine_silu_backward($0.baseAddress!, x, $0.baseAddress!, count, mean, scale, shift)
                        }
                        for (name, result) in [("into dst", got), ("in place", inPlace)] {
                            if let i = want.indices.first(where: { result[$0].bitPattern != want[$0].bitPattern }) {
                                XCTFail("\(label) \(name): [\(i)] \(result[i]), two passes give \(want[i])")
                            }
                        }
                    }
                }
            }
        }
    }
}
