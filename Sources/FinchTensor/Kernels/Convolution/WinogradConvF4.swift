// Winograd F(4×4, 3×3): each 4×4 block of output from a 6×6 block of input, 36 multiplies per
// (input channel, output channel) pair where direct convolution needs 144 and F(2×2, 3×3) 64, so
// the 36 GEMMs do 4× fewer operations than im2col's. Its transforms (points 0, ±⅔, ±3⁄2, ∞) amplify
// the GEMMs' rounding more than F(2×2)'s, so the result is further from direct convolution: on
// ResNet-like layers the RMS error is about 3× F(2×2)'s, and on 64 channels of a 16×16 map with
// outputs of scale 4.6 the largest error measured 4.5·10⁻⁵ against F(2×2)'s 8.5·10⁻⁶ (WinogradF4Tests
// bounds both; Benchmarks/WinogradRounding.md).
//
// The transforms exist for AVX-512 (WinogradF4Transforms.c) and AVX2 (WinogradF4TransformsAVX2.c, the
// same bits), not in Swift; `WinogradConv.tiles(for:)` chooses this tile only where they exist. Units
// of work are one channel and a group of samples, so a vector of sixteen (eight) tiles spans several
// samples when a plane has fewer tiles.

import CFinchKernels

extension WinogradConv {
    /// Samples per unit of the F(4×4) transforms: enough that a unit has sixteen tiles.
    static func samplesPerUnit(tiles: Int) -> Int { Swift.max(1, 16 / Swift.max(tiles, 1)) }

    static func transformWeights4(_ w: UnsafePointer<Float>, cout: Int, cin: Int, into u: UnsafeMutablePointer<Float>) {
        let plane = cout * cin
        Parallel.forEach(plane, grain: 256) { range in
            let done = finch_winograd4_weight_transform(w, plane, u, range.lowerBound, range.upperBound)
            ensure(done == 1, "WinogradConv: F(4×4, 3×3) chosen without AVX2 or AVX-512")
        }
    }

    static func weightGradientFromTransformed4(_ du: UnsafePointer<Float>, cout: Int, cin: Int,
                                               into dw: UnsafeMutablePointer<Float>) {
        let plane = cout * cin
        Parallel.forEach(plane, grain: 256) { range in
            let done = finch_winograd4_weight_gradient(du, plane, dw, range.lowerBound, range.upperBound)
            ensure(done == 1, "WinogradConv: F(4×4, 3×3) chosen without AVX2 or AVX-512")
        }
    }

    /// Runs body(channel, first sample of the chunk's unit, samples) for every unit of `channels`
    /// channels of chunk c.
    private static func units(_ channels: Int, _ c: Chunk, parallel: Bool, _ body: (Int, Int, Int) -> Void) {
        let tiles = c.th * c.tw, group = samplesPerUnit(tiles: tiles), groups = (c.nb + group - 1) / group
        planes(channels * groups, grain: Swift.max(1, 2048 / Swift.max(group * tiles, 1)), parallel: parallel) { range in
            for unit in range {
                let channel = unit / groups, s0 = (unit % groups) * group
                body(channel, s0, Swift.min(group, c.nb - s0))
            }
        }
    }

    /// The C transforms address a unit's planes with 32-bit offsets.
    static func offsetsFit(_ g: ConvGeometry) -> Bool {
        let group = samplesPerUnit(tiles: ((g.ho + 3) / 4) * ((g.wo + 3) / 4))
        return group * Swift.max(g.c * g.inPlane, g.cout * g.hw) < Int(Int32.max)
    }

    static func inputTransform4(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, parallel: Bool,
                                into v: UnsafeMutablePointer<Float>) {
        let tiles = c.th * c.tw
        units(g.c, c, parallel: parallel) { ci, s0, count in
            let done = finch_winograd4_input_transform(x + ((c.n0 + s0) * g.c + ci) * g.inPlane, g.c * g.inPlane, count,
                                                       g.h, g.w, g.pt, g.pl, c.th, c.tw, v + ci * c.p + s0 * tiles,
                                                       c.vStride)
            ensure(done == 1, "WinogradConv: F(4×4, 3×3) chosen without AVX2 or AVX-512")
        }
    }

    static func gradientTransform4(_ dy: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, parallel: Bool,
                                   into mt: UnsafeMutablePointer<Float>) {
        let tiles = c.th * c.tw
        units(g.cout, c, parallel: parallel) { co, s0, count in
            let done = finch_winograd4_gradient_transform(dy + ((c.n0 + s0) * g.cout + co) * g.hw, g.cout * g.hw, count,
                                                          g.ho, g.wo, c.th, c.tw, mt + co * c.p + s0 * tiles,
                                                          c.mStride)
            ensure(done == 1, "WinogradConv: F(4×4, 3×3) chosen without AVX2 or AVX-512")
        }
    }

    static func outputTransform4(_ m: UnsafePointer<Float>, _ g: ConvGeometry, _ c: Chunk, bias: UnsafePointer<Float>?,
                                 epilogue: ConvKernels.Epilogue, parallel: Bool, into out: UnsafeMutablePointer<Float>) {
        let tiles = c.th * c.tw
        units(g.cout, c, parallel: parallel) { co, s0, count in
            let first = ((c.n0 + s0) * g.cout + co) * g.hw
            let done = finch_winograd4_output_transform(m + co * c.p + s0 * tiles, c.mStride, count, c.th, c.tw, g.ho,
                                                        g.wo, g.cout * g.hw, bias?[co] ?? 0, out + first)
            ensure(done == 1, "WinogradConv: F(4×4, 3×3) chosen without AVX2 or AVX-512")
            // The epilogue while the planes are still in cache.
            if !epilogue.isNone {
                for s in 0..<count {
                    epilogue.apply(out, offset: first + s * g.cout * g.hw, count: g.hw, channel: co)
                }
            }
        }
    }
}
