import XCTest
@testable import FinchTensor

/// The column path's shortcuts against the row-by-row im2col and col2im, bit for bit: 1×1 stride-1
/// convolutions, forward and backward (whole planes gathered and scattered) and the scratch-plane kernels for
/// narrow planes (SmallPlaneColumns.swift), on every kernel path and 1, 2 and 3 threads.
final class ConvColumnBackwardTests: XCTestCase {
    private func bits(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [UInt32] {
        (0..<n).map { p[$0].bitPattern }
    }

    /// dx and dW of `ConvKernels.backward` with the plane path on or off.
    private func backward(_ g: ConvGeometry, x: Tensor, w: Tensor, dy: Tensor, planes: Bool) -> (dx: [UInt32], dw: [UInt32], y: [UInt32]) {
        let saved = (ConvKernels.pointwiseColumnPlanes, ConvKernels.smallPlaneWidth)
        defer { (ConvKernels.pointwiseColumnPlanes, ConvKernels.smallPlaneWidth) = saved }
        ConvKernels.pointwiseColumnPlanes = planes
        // The reference is the row-by-row col2im, not the scratch-plane one.
        if !planes { ConvKernels.smallPlaneWidth = 0 }
        let dxCount = g.n * g.c * g.inPlane, dwCount = g.cout * g.kg
        let dx = UnsafeMutablePointer<Float>.allocate(capacity: dxCount), dw = UnsafeMutablePointer<Float>.allocate(capacity: dwCount)
        defer { dx.deallocate(); dw.deallocate() }
        // NaN everywhere first: a value the path forgot to write cannot pass as equal.
        dx.initialize(repeating: .nan, count: dxCount)
        dw.initialize(repeating: .nan, count: dwCount)
        ConvKernels.backward(dy: dy.basePointer, x: x.basePointer, weight: w.basePointer, dx: dx, dw: dw, g)
        // The forward's columns come from the same im2col (called directly: the AVX-512 small-plane
        // kernel would take the shape in `ConvKernels.forward`).
        let out = UnsafeMutablePointer<Float>.allocate(capacity: g.n * g.cout * g.hw)
        defer { out.deallocate() }
        out.initialize(repeating: .nan, count: g.n * g.cout * g.hw)
        ConvKernels.im2colForward(x: x.basePointer, weight: w.basePointer, bias: nil, out: out, g)
        return (bits(dx, dxCount), bits(dw, dwCount), bits(out, g.n * g.cout * g.hw))
    }

    func testPointwisePlanesEqualIm2col() {
        let savedBudget = ConvKernels.columnBudget, savedThreads = Parallel.threads
        defer { ConvKernels.columnBudget = savedBudget; Parallel.setThreads(savedThreads) }
        // (n, cin, h, w, cout, groups): 4×4 and 8×8 planes as ResNet50's late stages, odd sizes.
        let shapes = [(3, 8, 4, 4, 12, 1), (5, 6, 3, 5, 4, 2), (2, 16, 8, 8, 8, 1)]
        var rng = TestRNG(251)
        for (k, (n, c, h, wd, cout, groups)) in shapes.enumerated() {
            let x = rng.tensor([n, c, h, wd]), w = rng.tensor([cout, c / groups, 1, 1]), dy = rng.tensor([n, cout, h, wd])
            let g = ConvGeometry(input: x.shape, weight: w.shape, stride: (1, 1), padding: .zero, dilation: (1, 1),
                                 groups: groups, op: "test")
            XCTAssertTrue(g.isPointwise && g.hw < ConvKernels.pointwiseDirectMinPlane, "shape \(k) takes the column path")
            for samplesPerChunk in [1, 2, n] {
                ConvKernels.columnBudget = samplesPerChunk * c * g.hw
                for threads in [1, 2, 3] {
                    Parallel.setThreads(threads)
                    for path in KernelPath.allCases where path <= KernelPath.best {
                        KernelPath.with(path) {
                            let ours = backward(g, x: x, w: w, dy: dy, planes: true)
                            let reference = backward(g, x: x, w: w, dy: dy, planes: false)
                            let label = "shape \(k), \(samplesPerChunk) per chunk, \(threads) threads, \(path)"
                            XCTAssertEqual(ours.dx, reference.dx, "dx: \(label)")
                            XCTAssertEqual(ours.dw, reference.dw, "dW: \(label)")
                            XCTAssertEqual(ours.y, reference.y, "forward: \(label)")
                            XCTAssertFalse(ours.dx.contains { Float(bitPattern: $0).isNaN }, "dx written: \(label)")
                        }
                    }
                }
            }
        }
    }

    /// col2im sums onto zeros, which turns a −0 column entry into +0; the plane scatter must too.
    func testScatterKeepsCol2imSignOfZero() {
        let g = ConvGeometry(input: [2, 3, 2, 2], weight: [4, 3, 1, 1], stride: (1, 1), padding: .zero, dilation: (1, 1),
                             groups: 1, op: "test")
        let count = g.n * g.c * g.hw
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let ours = UnsafeMutablePointer<Float>.allocate(capacity: count), theirs = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { cols.deallocate(); ours.deallocate(); theirs.deallocate() }
        for i in 0..<count { cols[i] = i % 3 == 0 ? -0.0 : Float(i) - 7.5 }
        ours.initialize(repeating: .nan, count: count)
        theirs.initialize(repeating: 0, count: count)
        ConvKernels.scatterGradientPlanes(cols, g, n0: 0, nb: g.n, into: ours)
        ConvKernels.col2im(cols, g, n0: 0, nb: g.n, into: theirs)
        XCTAssertEqual(bits(ours, count), bits(theirs, count))
        XCTAssertTrue((0..<count).contains { cols[$0].sign == .minus && cols[$0] == 0 }, "the input has −0")
    }

    /// im2col and col2im through the scratch plane against the row kernels: strides 1 and 2, padding
    /// 0 to 3 (asymmetric, wider than the kernel reach, and an unread last row), dilation, groups,
    /// 1×1 to 7×7 kernels, rows of 3 to 15 values (vector copies with every tail), chunks of one and of several samples (col2im adds onto a zeroed dx).
    func testSmallPlaneColumnsEqualRowKernels() {
        let savedThreads = Parallel.threads, savedWidth = ConvKernels.smallPlaneWidth
        defer { Parallel.setThreads(savedThreads); ConvKernels.smallPlaneWidth = savedWidth }
        // (n, c, h, w, kh, kw, stride, padding, dilation)
        let cases: [(Int, Int, Int, Int, Int, Int, (Int, Int), Padding2d, (Int, Int))] = [
            (3, 5, 4, 4, 3, 3, (1, 1), Padding2d(1, 1), (1, 1)),
            (2, 3, 7, 7, 3, 3, (1, 1), Padding2d(1, 1), (1, 1)),
            (1, 2, 15, 15, 3, 3, (1, 1), Padding2d(1, 1), (1, 1)),
            (2, 4, 8, 8, 3, 3, (2, 2), Padding2d(1, 1), (1, 1)),
            (2, 3, 7, 9, 3, 3, (2, 2), Padding2d(top: 0, bottom: 1, left: 2, right: 0), (1, 1)),
            (1, 3, 8, 8, 1, 1, (2, 2), .zero, (1, 1)),
            (2, 2, 9, 10, 7, 7, (2, 2), Padding2d(3, 3), (1, 1)),
            (1, 4, 6, 5, 3, 3, (1, 1), Padding2d(2, 2), (2, 2)),
            (3, 2, 5, 6, 2, 3, (1, 2), Padding2d(top: 3, bottom: 0, left: 0, right: 3), (1, 1)),
        ]
        var rng = TestRNG(252)
        for (k, (n, c, h, w, kh, kw, stride, padding, dilation)) in cases.enumerated() {
            let x = rng.tensor([n, c, h, w])
            let g = ConvGeometry(input: x.shape, weight: [3, c, kh, kw], stride: stride, padding: padding,
                                 dilation: dilation, groups: 1, op: "test")
            ConvKernels.smallPlaneWidth = savedWidth
            XCTAssertTrue(ConvKernels.smallPlaneColumns(g), "case \(k) takes the scratch plane")
            for (n0, nb) in [(0, n), (n - 1, 1)] {
                let colCount = g.kg * nb * g.hw, dxCount = n * c * h * w
                let colsTheirs = rng.tensor([colCount])
                for threads in [1, 2, 3] {
                    Parallel.setThreads(threads)
                    for path in KernelPath.allCases where path <= KernelPath.best {
                        KernelPath.with(path) {
                            func run(_ width: Int) -> (cols: [UInt32], dx: [UInt32]) {
                                ConvKernels.smallPlaneWidth = width
                                let cols = UnsafeMutablePointer<Float>.allocate(capacity: colCount)
                                let dx = UnsafeMutablePointer<Float>.allocate(capacity: dxCount)
                                defer { cols.deallocate(); dx.deallocate() }
                                cols.initialize(repeating: .nan, count: colCount)
                                dx.initialize(repeating: 0, count: dxCount)
                                ConvKernels.im2col(x.basePointer, g, n0: n0, nb: nb, into: cols)
                                let written = bits(cols, colCount)
                                ConvKernels.col2im(colsTheirs.basePointer, g, n0: n0, nb: nb, into: dx)
                                return (written, bits(dx, dxCount))
                            }
                            let ours = run(savedWidth), reference = run(0)
                            let label = "case \(k), samples \(n0)..<\(n0 + nb), \(threads) threads, \(path)"
                            XCTAssertEqual(ours.cols, reference.cols, "im2col: \(label)")
                            XCTAssertEqual(ours.dx, reference.dx, "col2im: \(label)")
                            XCTAssertFalse(ours.cols.contains { Float(bitPattern: $0).isNaN }, "cols written: \(label)")
                        }
                    }
                }
            }
        }
    }
}
