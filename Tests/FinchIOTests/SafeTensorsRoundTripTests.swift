import Foundation
import XCTest
import FinchTensor
@testable import FinchIO

final class SafeTensorsRoundTripTests: TemporaryDirectoryTestCase {
    let metadata = [
        "model": "tf_efficientnet_lite0",
        "classes": #"["daisy", "rose", "tulip"]"#,       // a JSON list stored as a string
        "adamw": #"{"lr": 0.001, "betas": [0.9, 0.999]}"#,
        "note": "naïve ✓ \\ back\tslash\nnew line \u{01} control",
        "": "empty key",
    ]

    func testFloat32Float16BFloat16AndInt64RoundTrip() throws {
        var rng = RandomGenerator(seed: 7)
        let weight = Tensor((0..<24).map { _ in rng.uniform(-3, 3) }, shape: [2, 3, 4])
        // Exactly representable in binary16: multiples of 1/1024 below 2, plus edge values.
        let exactHalves: [Float] = [0, -0.0, 1, -2.5, 65504, -65504, 0x1p-24, 0x1p-14, 1023 * 0x1p-24,
                                    .infinity, -.infinity, 0.5 + 0x1p-11]
        let roundedHalves: [Float] = (0..<12).map { _ in rng.uniform(-100, 100) } + [1e-8, 70000, 1.0 / 3.0]
        let bfloat: [Float] = (0..<6).map { _ in rng.uniform(-1, 1) }
        let counters: [Int64] = [Int64.min, -1, 0, 1, 1 << 53 + 1, Int64.max]
        let transposed = Tensor((0..<6).map(Float.init), shape: [2, 3]).transposed()   // not contiguous

        let url = file("round trip.safetensors")
        try writeSafeTensors([
            ("blocks.0.conv.weight", .float32(weight)),
            ("head.exact", .float16(Tensor(exactHalves, shape: [3, 4]))),
            ("head.rounded", .float16(Tensor(roundedHalves, shape: [roundedHalves.count]))),
            ("bf", .bfloat16(Tensor(bfloat, shape: [2, 3]))),
            ("bn.num_batches_tracked", .int64([123_456_789_012_345], shape: [])),
            ("counters", .int64(counters, shape: [2, 3])),
            ("transposed", .float32(transposed)),
            ("empty", .float32(Tensor(zeros: [0, 5]))),
            ("empty.i64", .int64([], shape: [3, 0])),
        ], metadata: metadata, to: url)

        let st = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(st.metadata, metadata)
        XCTAssertEqual(st.names, ["bf", "blocks.0.conv.weight", "bn.num_batches_tracked", "counters", "empty",
                                  "empty.i64", "head.exact", "head.rounded", "transposed"])
        XCTAssertEqual(st.info("blocks.0.conv.weight"), SafeTensorsInfo(dtype: .f32, shape: [2, 3, 4], byteCount: 96))
        XCTAssertEqual(st.info("head.exact")?.dtype, .f16)
        XCTAssertEqual(st.info("bf")?.dtype, .bf16)
        XCTAssertEqual(st.info("bn.num_batches_tracked"), SafeTensorsInfo(dtype: .i64, shape: [], byteCount: 8))
        XCTAssertNil(st.info("missing"))

        let w = try st.tensor("blocks.0.conv.weight")
        XCTAssertEqual(w.shape, [2, 3, 4])
        XCTAssertEqual(w.scalars.map(\.bitPattern), weight.scalars.map(\.bitPattern))

        let exact = try st.tensor("head.exact")
        XCTAssertEqual(exact.shape, [3, 4])
        XCTAssertEqual(exact.scalars.map(\.bitPattern), exactHalves.map(\.bitPattern))
        let rounded = try st.tensor("head.rounded").scalars
        for (got, original) in zip(rounded, roundedHalves) {
            XCTAssertEqual(got, float(fromFloat16Bits: float16Bits(original)))
            #if !(os(macOS) && arch(x86_64))
            XCTAssertEqual(got, Float(Float16(original)))
            #endif
        }
        XCTAssertEqual(rounded[12], 0x1p-24 * 0)           // 1e-8 is below half the smallest subnormal
        XCTAssertEqual(rounded[13], .infinity)             // 70000 overflows binary16
        XCTAssertEqual(try st.tensor("bf").scalars, bfloat.map { float(fromBFloat16Bits: bfloat16Bits($0)) })

        XCTAssertEqual(try st.int64s("bn.num_batches_tracked"), [123_456_789_012_345])
        XCTAssertEqual(try st.int64s("counters"), counters)
        XCTAssertEqual(try st.convertedTensor("counters").scalars, counters.map { Float($0) })
        XCTAssertEqual(try st.tensor("transposed").scalars, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(try st.tensor("empty").shape, [0, 5])
        XCTAssertEqual(try st.int64s("empty.i64"), [])
        XCTAssertEqual(try st.rawBytes("bn.num_batches_tracked"),
                       withUnsafeBytes(of: Int64(123_456_789_012_345).littleEndian) { Data($0) })
    }

    /// Header padded to 8 bytes with spaces, metadata first, data widest dtype first then by
    /// name, offsets contiguous: the layout the reference writer produces.
    func testLayoutMatchesReferenceWriter() throws {
        let url = file("layout.safetensors")
        try writeSafeTensors([
            ("z", .float16(Tensor([1, 2, 3], shape: [3]))),
            ("a", .int64([5], shape: [1])),
            ("m", .float32(Tensor([1, 2], shape: [2]))),
            ("b", .float32(Tensor([4], shape: [1]))),
        ], metadata: ["k": "v"], to: url)
        let bytes = try Data(contentsOf: url)
        let n = Int(bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        XCTAssertEqual(n % 8, 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces),
                       #"{"__metadata__":{"k":"v"},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"m":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},"z":{"dtype":"F16","shape":[3],"data_offsets":[20,26]}}"#)
        XCTAssertTrue(header.hasSuffix(String(repeating: " ", count: n - header.trimmingCharacters(in: .whitespaces).utf8.count)))
        XCTAssertEqual(bytes.count, 8 + n + 26)

        // Same content, other entry order: byte-identical file.
        let again = file("again.safetensors")
        try writeSafeTensors([
            ("b", .float32(Tensor([4], shape: [1]))),
            ("m", .float32(Tensor([1, 2], shape: [2]))),
            ("a", .int64([5], shape: [1])),
            ("z", .float16(Tensor([1, 2, 3], shape: [3]))),
        ], metadata: ["k": "v"], to: again)
        XCTAssertEqual(try Data(contentsOf: again), bytes)
    }

    func testNoMetadataAndNoTensors() throws {
        let url = file("empty.safetensors")
        try writeSafeTensors([], to: url)
        let st = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(st.names, [])
        XCTAssertEqual(st.metadata, [:])
        XCTAssertEqual(try Data(contentsOf: url).count, 16)   // 8-byte length + "{}" padded to 8
    }

    func testDictionaryConvenienceWriter() throws {
        let url = file("dict.safetensors")
        try writeSafeTensors(["a": Tensor([1, 2.5], shape: [2]), "b": Tensor(scalar: -1)], as: .bf16, to: url)
        let st = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(st.info("a")?.dtype, .bf16)
        XCTAssertEqual(try st.tensor("a").scalars, [1, 2.5])
        XCTAssertEqual(try st.tensor("b").shape, [])
        let error = assertSafeTensorsError(try writeSafeTensors(["a": Tensor([1], shape: [1])], as: .i32, to: url))
        XCTAssertTrue(error?.description.contains("I32") ?? false)
    }

    func testAccessorsRejectWrongDTypeAndSuggestNearestName() throws {
        let url = file("names.safetensors")
        try writeSafeTensors([
            ("blocks.0.bn1.running_mean", .float32(Tensor([0], shape: [1]))),
            ("blocks.0.bn1.running_var", .float32(Tensor([1], shape: [1]))),
            ("blocks.0.bn1.num_batches_tracked", .int64([3], shape: [])),
        ], to: url)
        let st = try SafeTensorsFile(contentsOf: url)

        guard case .wrongDType(_, "blocks.0.bn1.num_batches_tracked", .i64, _)? =
                assertSafeTensorsError(try st.tensor("blocks.0.bn1.num_batches_tracked")) else { return XCTFail() }
        XCTAssertEqual(try st.convertedTensor("blocks.0.bn1.num_batches_tracked").scalars, [3])
        guard case .wrongDType(_, _, .f32, _)? = assertSafeTensorsError(try st.int64s("blocks.0.bn1.running_var"))
        else { return XCTFail() }

        let missing = assertSafeTensorsError(try st.tensor("blocks.0.bn1.running_varr"))
        guard case .tensorNotFound(let path, "blocks.0.bn1.running_varr", let nearest, 3)? = missing
        else { return XCTFail("\(String(describing: missing))") }
        XCTAssertEqual(path, url.path)
        XCTAssertEqual(nearest.first, "blocks.0.bn1.running_var")
        XCTAssertTrue(missing!.description.contains("names.safetensors"))
        XCTAssertTrue(missing!.description.contains("blocks.0.bn1.running_var\""))
    }

    func testReaderOutlivesItsCopiesAndTensors() throws {
        let url = file("lifetime.safetensors")
        try writeSafeTensors([("x", .float32(Tensor([1, 2, 3], shape: [3])))], to: url)
        var tensor: Tensor?
        do {
            let st = try SafeTensorsFile(contentsOf: url)
            let copy = st
            tensor = try copy.tensor("x")
        }
        // The mapping is gone; the tensor owns its own storage.
        XCTAssertEqual(tensor?.scalars, [1, 2, 3])
        // Replacing the file by rename while a reader is open leaves that reader's view intact.
        let st = try SafeTensorsFile(contentsOf: url)
        try writeSafeTensors([("y", .float32(Tensor([9], shape: [1])))], to: url)
        XCTAssertEqual(try st.tensor("x").scalars, [1, 2, 3])
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).names, ["y"])
    }
}
