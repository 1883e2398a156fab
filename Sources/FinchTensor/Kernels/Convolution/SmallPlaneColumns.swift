// im2col and col2im for narrow output planes (ResNet's 3×3 layers on 4×4 and 8×8 maps at 128 px,
// its stride-2 layers). The general kernels copy one output row at a time, with a zero fill on each
// side for the padding: at four or eight values a row the calls cost more than the copying (9% of
// a one-thread ResNet18 training step at 128 px). Here each (sample, channel) plane is first copied
// into a zero-padded scratch plane of a few hundred floats, from which every tap's block is read
// (or, for col2im, into which every tap's block is summed) with plain loops and no bounds to test.

extension ConvKernels {
    /// Output rows at most this wide take the scratch-plane kernels.
    static var smallPlaneWidth = 16

    /// Padded planes up to this many floats (16 KB) fit a thread's scratch buffer.
    static let smallPlaneScratch = 4096

    /// The extent of the input, padding included, that the taps read: rows and columns from −pt and −pl.
    @inline(__always)
    private static func paddedExtent(_ g: ConvGeometry) -> (rows: Int, cols: Int) {
        ((g.ho - 1) * g.sh + (g.kh - 1) * g.dh + 1, (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1)
    }

    static func smallPlaneColumns(_ g: ConvGeometry) -> Bool {
        guard smallPlaneWidth > 0, g.wo <= smallPlaneWidth, g.ho > 0, g.wo > 0 else { return false }
        let e = paddedExtent(g)
        return e.rows * e.cols <= smallPlaneScratch
    }

    /// Plane (s, c) into scratch [rows, cols], zero where the taps read padding. Rows and columns
    /// past the input on the far side are padding too, as are those before it.
    @inline(__always)
    private static func pad(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, rows: Int, cols: Int,
                            into p: UnsafeMutablePointer<Float>) {
        p.update(repeating: 0, count: rows &* cols)
        let r0 = Swift.max(0, g.pt), r1 = Swift.min(rows, g.pt &+ g.h)
        let c0 = Swift.max(0, g.pl), c1 = Swift.min(cols, g.pl &+ g.w)
        guard r0 < r1 && c0 < c1 else { return }
        for r in r0..<r1 {
            let src = plane + ((r &- g.pt) &* g.w &- g.pl), dst = p + (r &* cols)
            copyRow(src + c0, dst + c0, c1 &- c0)
        }
    }

    /// dst[0..<count] = src[0..<count] in vectors of eight and four and a tail of at most three: a
    /// plain loop becomes a memcpy call, which costs more than the copy at these widths.
    @inline(__always)
    private static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        var k = 0
        while k &+ 8 <= count {
            UnsafeMutableRawPointer(dst + k).storeBytes(of: UnsafeRawPointer(src + k).loadUnaligned(as: SIMD8<Float>.self),
                                                       as: SIMD8<Float>.self)
            k &+= 8
        }
        if k &+ 4 <= count {
            UnsafeMutableRawPointer(dst + k).storeBytes(of: UnsafeRawPointer(src + k).loadUnaligned(as: SIMD4<Float>.self),
                                                       as: SIMD4<Float>.self)
            k &+= 4
        }
        if k < count { dst[k] = src[k] }
        if k &+ 1 < count { dst[k &+ 1] = src[k &+ 1] }
        if k &+ 2 < count { dst[k &+ 2] = src[k &+ 2] }
    }

    /// `im2col` over whole planes, through a zero-padded copy of each input plane.
    static func smallPlaneIm2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                                 into cols: UnsafeMutablePointer<Float>) {
        let (rows, width) = paddedExtent(g)
        let ld = nb * g.hw
        Parallel.forEach(nb * g.c, grain: Swift.max(1, 8192 / Swift.max(g.hw * g.khw, 1))) { range in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
            defer { p.deallocate() }
            // Offsets stay inside the scratch plane (its extent is what the taps read), the input and
            // the column buffer, whose sizes were checked: wrapping arithmetic cannot overflow.
            for u in range {
                let s = u / g.c, c = u % g.c
                pad(x + (((n0 &+ s) &* g.c &+ c) &* g.inPlane), g, rows: rows, cols: width, into: p)
                for i in 0..<g.kh {
                    for j in 0..<g.kw {
                        let d = cols + ((c &* g.khw &+ i &* g.kw &+ j) &* ld &+ s &* g.hw)
                        let tap = p + (i &* g.dh &* width &+ j &* g.dw)
                        for oh in 0..<g.ho {
                            let src = tap + (oh &* g.sh &* width), row = d + (oh &* g.wo)
                            if g.sw == 1 {
                                copyRow(src, row, g.wo)
                            } else {
                                for ow in 0..<g.wo { row[ow] = src[ow &* g.sw] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `col2im` over whole planes: each tap's block is summed into a zero-padded scratch plane in
    /// col2im's order (taps i, then j), whose interior then replaces the dx plane. The sums start
    /// from +0 as col2im's do on the zeroed dx, so the result is col2im's bit for bit; the dx plane
    /// must be zero on entry, as col2im needs it.
    static func smallPlaneCol2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, n0: Int, nb: Int,
                                into dx: UnsafeMutablePointer<Float>) {
        let (rows, width) = paddedExtent(g)
        let ld = nb * g.hw
        let r0 = Swift.max(0, g.pt), r1 = Swift.min(rows, g.pt + g.h)
        let c0 = Swift.max(0, g.pl), c1 = Swift.min(width, g.pl + g.w)
        Parallel.forEach(nb * g.c, grain: Swift.max(1, 4096 / Swift.max(g.hw * g.khw, 1))) { range in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
            defer { p.deallocate() }
            // As in smallPlaneIm2col, offsets stay inside checked buffers: wrapping arithmetic.
            for u in range {
                let s = u / g.c, c = u % g.c
                p.update(repeating: 0, count: rows &* width)
                for i in 0..<g.kh {
                    for j in 0..<g.kw {
                        let src = cols + ((c &* g.khw &+ i &* g.kw &+ j) &* ld &+ s &* g.hw)
                        let tap = p + (i &* g.dh &* width &+ j &* g.dw)
                        for oh in 0..<g.ho {
                            let d = tap + (oh &* g.sh &* width), row = src + (oh &* g.wo)
                            if g.sw == 1 {
                                for ow in 0..<g.wo { d[ow] += row[ow] }
                            } else {
                                for ow in 0..<g.wo { d[ow &* g.sw] += row[ow] }
                            }
                        }
                    }
                }
                // Input positions no tap reads (past the extent) keep dx's zero.
                guard r0 < r1 && c0 < c1 else { continue }
                let plane = dx + (((n0 &+ s) &* g.c &+ c) &* g.inPlane)
                for r in r0..<r1 {
                    let from = p + (r &* width), to = plane + ((r &- g.pt) &* g.w &- g.pl)
                    copyRow(from + c0, to + c0, c1 - c0)
                }
            }
        }
    }
}
