import Foundation
import XCTest
import FinchTensor
@testable import FinchIO

/// Reads the file `Tests/Fixtures/safetensors/make_python_written.py` wrote with PyTorch and the
/// reference `safetensors` package, and checks every value the script put there.
final class SafeTensorsPythonFixtureTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/safetensors/python_written.safetensors")

    func testReadsEveryTensorWrittenByPython() throws {
        let st = try SafeTensorsFile(contentsOf: Self.fixture)
        XCTAssertEqual(st.metadata, [
            "format": "pt",
            "model": "tiny",
            "classes": #"["daisy", "rose", "tulip"]"#,
            "note": "naïve ✓ \"quoted\"",
        ])
        XCTAssertEqual(st.names, ["bn.extremes", "bn.num_batches_tracked", "bn.offsets", "conv.weight", "empty",
                                  "f8.e4m3", "f8.e5m2", "head.bias", "head.weight", "ids.i32", "ids.u8", "mask",
                                  "scalar", "stats.f64"])

        let conv = try st.tensor("conv.weight")
        XCTAssertEqual(conv.shape, [2, 3, 2, 2])
        XCTAssertEqual(conv.scalars, (0..<24).map { Float($0) * 0.25 - 3 })

        let bias = try st.tensor("head.bias")
        XCTAssertEqual(st.info("head.bias")?.dtype, .f16)
        XCTAssertEqual(bias.shape, [2, 5])
        let expectedBias: [Float] = [0, -0.0, 1, -2.5, 65504, 0x1p-24, 0x1p-14, .infinity, -.infinity, .nan]
        XCTAssertEqual(bias.scalars.count, expectedBias.count)
        for (got, want) in zip(bias.scalars, expectedBias) { XCTAssertTrue(sameFloat(got, want), "\(got) vs \(want)") }

        let headWeight = try st.tensor("head.weight")
        XCTAssertEqual(st.info("head.weight")?.dtype, .bf16)
        XCTAssertEqual(headWeight.shape, [2, 4])
        XCTAssertEqual(headWeight.scalars, (0..<8).map { Float($0) * 1.5 - 3 })

        // F64 narrows to the nearest Float: 16777217 is a tie that goes to even 16777216,
        // 1e300 overflows to infinity and 1e-50 underflows to zero, as numpy's astype does.
        XCTAssertEqual(st.info("stats.f64")?.dtype, .f64)
        XCTAssertEqual(try st.tensor("stats.f64").scalars,
                       [Float(0.1 as Double), Float(1.0 / 3.0 as Double), -2.5, .infinity, 0, 16_777_216])

        XCTAssertEqual(st.info("bn.num_batches_tracked"), SafeTensorsInfo(dtype: .i64, shape: [], byteCount: 8))
        XCTAssertEqual(try st.int64s("bn.num_batches_tracked"), [123_456_789_012_345])
        XCTAssertEqual(st.info("bn.offsets")?.shape, [2, 3])
        XCTAssertEqual(try st.int64s("bn.offsets"), [-3, -2, -1, 0, 1, 2])
        XCTAssertEqual(try st.int64s("bn.extremes"), [Int64.min, Int64.max])
        XCTAssertEqual(try st.int64s("ids.i32"), [-2_147_483_648, 0, 2_147_483_647])
        XCTAssertEqual(try st.int64s("ids.u8"), [0, 1, 2, 3])
        XCTAssertEqual(try st.convertedTensor("ids.u8").scalars, [0, 1, 2, 3])
        XCTAssertEqual(st.info("mask")?.dtype, .bool)
        XCTAssertEqual(try st.int64s("mask"), [1, 0, 1])
        XCTAssertEqual(try st.convertedTensor("mask").scalars, [1, 0, 1])

        let e4m3 = try st.tensor("f8.e4m3").scalars
        for (got, want) in zip(e4m3, [0, 0.5, -1.75, 448, 0x1p-9, .nan] as [Float]) {
            XCTAssertTrue(sameFloat(got, want), "\(got) vs \(want)")
        }
        XCTAssertEqual(try st.tensor("f8.e5m2").scalars, [0, 1.5, -57344, 0x1p-16, .infinity])

        XCTAssertEqual(try st.tensor("empty").shape, [2, 0])
        let scalar = try st.tensor("scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.item, 7.5)
    }

    /// A Finch-written copy of the fixture's float tensors reads back identically, and
    /// rewriting is stable: what Finch writes from what Python wrote loses nothing.
    func testRewritingFixtureKeepsValues() throws {
        let st = try SafeTensorsFile(contentsOf: Self.fixture)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("finch-rewrite-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: out) }
        try writeSafeTensors([
            ("conv.weight", .float32(try st.tensor("conv.weight"))),
            ("head.bias", .float16(try st.tensor("head.bias"))),
            ("head.weight", .bfloat16(try st.tensor("head.weight"))),
            ("bn.num_batches_tracked", .int64(try st.int64s("bn.num_batches_tracked"), shape: [])),
        ], metadata: st.metadata, to: out)
        let back = try SafeTensorsFile(contentsOf: out)
        XCTAssertEqual(back.metadata, st.metadata)
        for name in ["conv.weight", "head.bias", "head.weight", "bn.num_batches_tracked"] {
            XCTAssertEqual(try back.rawBytes(name), try st.rawBytes(name), name)
            XCTAssertEqual(back.info(name), st.info(name), name)
        }
    }
}
