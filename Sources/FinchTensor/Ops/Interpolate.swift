// Bilinear resizing of NCHW planes, `torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False)` without antialiasing. MobileViT uses it to bring a feature map to a
// multiple of its patch size and back.

/// Where each output position reads its two neighbours and with what weights, computed in
/// Float as PyTorch's CPU kernel does (so the weights agree bit for bit).
struct LinearTaps {
    var lo: [Int32], hi: [Int32]
    var wLo: [Float], wHi: [Float]

    init(input: Int, output: Int) {
        let scale = Float(input) / Float(output)
        lo = []; hi = []; wLo = []; wHi = []
        lo.reserveCapacity(output); hi.reserveCapacity(output)
        for o in 0..<output {
            // Half-pixel centres; negative sources clamp to the first pixel.
            let src = Swift.max(scale * (Float(o) + 0.5) - 0.5, 0)
            let i0 = Swift.min(Int(src), input - 1)
            let i1 = Swift.min(i0 + 1, input - 1)
            let l1 = src - Float(i0)
            lo.append(Int32(i0)); hi.append(Int32(i1))
            wLo.append(1 - l1); wHi.append(l1)
        }
    }
}

/// Bilinear resize to `size` (height, width) with half-pixel centres (`align_corners=False`).
public func interpolateBilinear(_ x: Tensor, size: (Int, Int)) -> Tensor {
    ensure(x.rank == 4, "interpolateBilinear: input must be [N, C, H, W], got shape \(x.shape)")
    ensure(size.0 >= 1 && size.1 >= 1, "interpolateBilinear: output size \(size) must be positive")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = size
    if ho == h && wo == w { return x }
    let rows = LinearTaps(input: h, output: ho), cols = LinearTaps(input: w, output: wo)
    let xd = x.isContiguous ? x.detach() : x.copy()
    let out = Tensor(uninitializedShape: [n, c, ho, wo])
    let src = xd.basePointer, dst = out.basePointer
    Parallel.forEach(n * c, grain: Swift.max(1, 4096 / Swift.max(1, ho * wo))) { planes in
        for p in planes {
            let s = src + p * h * w, d = dst + p * ho * wo
            for oy in 0..<ho {
                let r0 = s + Int(rows.lo[oy]) * w, r1 = s + Int(rows.hi[oy]) * w
                let a0 = rows.wLo[oy], a1 = rows.wHi[oy]
                for ox in 0..<wo {
                    let c0 = Int(cols.lo[ox]), c1 = Int(cols.hi[ox])
                    let b0 = cols.wLo[ox], b1 = cols.wHi[ox]
                    d[oy * wo + ox] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1])
                }
            }
        }
    }
    return record(out, "interpolate_bilinear", [x], .resizeBilinear(height: ho, width: wo)) { g in
        let gd = g.isContiguous ? g : g.copy()
        let gx = Tensor(zeros: [n, c, h, w])
        let gs = gd.basePointer, gp = gx.basePointer
        // Each plane scatters only into its own input plane: planes split safely across threads.
        Parallel.forEach(n * c, grain: Swift.max(1, 4096 / Swift.max(1, ho * wo))) { planes in
            for p in planes {
                let s = gs + p * ho * wo, d = gp + p * h * w
                for oy in 0..<ho {
                    let r0 = d + Int(rows.lo[oy]) * w, r1 = d + Int(rows.hi[oy]) * w
                    let a0 = rows.wLo[oy], a1 = rows.wHi[oy]
                    for ox in 0..<wo {
                        let v = s[oy * wo + ox]
                        let c0 = Int(cols.lo[ox]), c1 = Int(cols.hi[ox])
                        let b0 = cols.wLo[ox], b1 = cols.wHi[ox]
                        r0[c0] += a0 * b0 * v; r0[c1] += a0 * b1 * v
                        r1[c0] += a1 * b0 * v; r1[c1] += a1 * b1 * v
                    }
                }
            }
        }
        return [gx]
    }
}
