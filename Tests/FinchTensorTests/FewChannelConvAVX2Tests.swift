import XCTest
import CFinchKernels
@testable import FinchTensor

/// The AVX2 few-channel (RGB stem) convolution (FewChannelConvAVX2.c) against the AVX-512 kernel
/// bit for bit where the CPU has both (same FMA order per output lane), and against a Float64
/// direct convolution within the FMA chain's rounding on any AVX2 CPU: stride 1 and 2, partial
/// channel blocks (17, 20 outputs: a block of sixteen and a partial one, under and over eight) and
/// partial column vectors, padding on every side, one to four input channels, 3×3 and 5×5 (more taps
/// than the AVX2 kernel gathers at once), no bias. Output past the planes must stay untouched (NaN
/// canaries).
final class FewChannelConvAVX2Tests: XCTestCase {
    struct Case { let n, c, h, w, cout, k, stride, pad: Int; let bias: Bool }
    let cases = [Case(n: 2, c: 3, h: 19, w: 37, cout: 17, k: 3, stride: 2, pad: 1, bias: true),
                 Case(n: 1, c: 3, h: 9, w: 21, cout: 20, k: 3, stride: 1, pad: 1, bias: true),
                 Case(n: 1, c: 1, h: 8, w: 13, cout: 5, k: 3, stride: 2, pad: 0, bias: false),
                 Case(n: 2, c: 3, h: 16, w: 16, cout: 16, k: 3, stride: 2, pad: 1, bias: true),
                 Case(n: 1, c: 2, h: 6, w: 40, cout: 9, k: 2, stride: 1, pad: 1, bias: true),
                 // 36 taps (the AVX2 kernel's gathered input vectors fill up exactly) and 75 (twice, then 3 more).
                 Case(n: 1, c: 4, h: 7, w: 17, cout: 16, k: 3, stride: 1, pad: 1, bias: true),
                 Case(n: 2, c: 3, h: 11, w: 30, cout: 12, k: 5, stride: 2, pad: 2, bias: true)]

    private func run(_ t: Case, x: [Float], w: [Float], b: [Float]) -> [Float]? {
        let ho = (t.h + 2 * t.pad - t.k) / t.stride + 1, wo = (t.w + 2 * t.pad - t.k) / t.stride + 1
        let geometry = [t.n, t.c, t.h, t.w, t.cout, t.k, t.k, t.stride, t.stride, t.pad, t.pad, ho, wo]
        var out = [Float](repeating: .nan, count: t.n * t.cout * ho * wo + 8)
        let units = t.n * ((t.cout + 15) / 16) * ho
        let took: Int32 = geometry.withUnsafeBufferPointer { geo in
            var scratch = [Float](repeating: 0, count: finch_few_channel_conv_scratch(geo.baseAddress!))
            // Two calls over split unit ranges, as two threads would make them.
            return out.withUnsafeMutableBufferPointer { o in
                scratch.withUnsafeMutableBufferPointer { s in
                    let half = units / 2
                    let first = finch_few_channel_conv(x, w, t.bias ? b : nil, o.baseAddress!, geo.baseAddress!, 0, half, s.baseAddress!)
                    let second = finch_few_channel_conv(x, w, t.bias ? b : nil, o.baseAddress!, geo.baseAddress!, half, units,
                                                        s.baseAddress!)
                    return first & second
                }
            }
        }
        return took == 1 ? out : nil
    }

    func testAVX2AgainstAVX512AndFloat64() {
        guard KernelPath.best >= .avx2 else { return }
        for (ci, t) in cases.enumerated() {
            var rng = RandomGenerator(seed: 90 + UInt64(ci))
            let x = Tensor.normal([t.n * t.c * t.h * t.w], using: &rng).scalars
            let w = Tensor.normal([t.cout * t.c * t.k * t.k], using: &rng).scalars
            let b = Tensor.normal([t.cout], using: &rng).scalars
            guard let got = KernelPath.with(.avx2, { run(t, x: x, w: w, b: b) }) else {
                XCTFail("case \(ci): the avx2 path declined")
                continue
            }
            let ho = (t.h + 2 * t.pad - t.k) / t.stride + 1, wo = (t.w + 2 * t.pad - t.k) / t.stride + 1
            let planes = t.n * t.cout * ho * wo
            XCTAssertTrue(got[planes...].allSatisfy(\.isNaN), "case \(ci): written past the output")
            for s in 0..<t.n {
                for co in 0..<t.cout {
                    for oh in 0..<ho {
                        for ow in 0..<wo {
                            var exact = t.bias ? Double(b[co]) : 0, magnitude = abs(exact)
                            for c in 0..<t.c {
                                for i in 0..<t.k {
                                    for j in 0..<t.k {
                                        let r = oh * t.stride - t.pad + i, q = ow * t.stride - t.pad + j
                                        guard r >= 0, r < t.h, q >= 0, q < t.w else { continue }
                                        let p = Double(x[((s * t.c + c) * t.h + r) * t.w + q]) * Double(w[((co * t.c + c) * t.k + i) * t.k + j])
                                        exact += p
                                        magnitude += abs(p)
                                    }
                                }
                            }
                            let v = got[((s * t.cout + co) * ho + oh) * wo + ow]
                            XCTAssertEqual(Double(v), exact, accuracy: Double(max(28, t.c * t.k * t.k + 1)) * 6e-8 * magnitude,
                                           "case \(ci) [\(s), \(co), \(oh), \(ow)]")
                        }
                    }
                }
            }
            guard KernelPath.best >= .avx512 else { continue }
            guard let want = KernelPath.with(.avx512, { run(t, x: x, w: w, b: b) }) else {
                XCTFail("case \(ci): the avx512 path declined")
                continue
            }
            if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern && !(got[$0].isNaN && want[$0].isNaN) }) {
                XCTFail("case \(ci): [\(i)] avx2 \(got[i]) against avx512 \(want[i])")
            }
        }
    }

    func testGenericPathDeclines() {
        KernelPath.with(.generic) {
            XCTAssertEqual(finch_few_channel_conv(nil, nil, nil, nil, nil, 0, 0, nil), 0)
        }
    }
}
