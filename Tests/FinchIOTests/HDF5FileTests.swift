import XCTest
import Foundation
import FinchTensor
@testable import FinchIO

final class HDF5FileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-h5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func writeSample(_ url: URL) throws {
        try HDF5File.writeAtomically(to: url) { root in
            try root.setAttribute("format", .string("finch-test"))
            try root.setAttribute("version", .int64(1))
            try root.setAttribute("lrs", .doubles([1e-3, 5e-4]))
            try root.setAttribute("names", .strings(["daisy", "rose"]))
            try root.write("model/conv_stem.weight", tensor: Tensor([1, 2, 3, 4, 5, 6], shape: [1, 2, 3]))
            try root.write("model/bn1.num_batches_tracked", int64s: [123_456_789_012], shape: [])
            try root.write("metrics/val_top1", doubles: [0.5, 0.75])
            try root.write("config", string: "experiment: flowers\nseed: 42\n")
            let g = try root.createGroup("optimizer/groups/0")
            try g.setAttribute("lr", .double(0.001))
            try g.setAttribute("params", .strings(["a.weight", "a.bias"]))
        }
    }

    func testRoundTripsDatasetsAttributesAndGroups() throws {
        let url = dir.appendingPathComponent("c.h5")
        try writeSample(url)
        let f = try HDF5File(reading: url)
        let r = f.root
        XCTAssertEqual(try r.attribute("format"), .string("finch-test"))
        XCTAssertEqual(try r.attribute("version"), .int64(1))
        XCTAssertEqual(try r.attribute("lrs"), .doubles([1e-3, 5e-4]))
        XCTAssertEqual(try r.attribute("names"), .strings(["daisy", "rose"]))
        XCTAssertEqual(Set(r.attributeNames()), ["format", "version", "lrs", "names"])
        let w = try r.readTensor("model/conv_stem.weight")
        XCTAssertEqual(w.shape, [1, 2, 3])
        XCTAssertEqual(w.scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try r.readInt64s("model/bn1.num_batches_tracked"), [123_456_789_012])
        XCTAssertEqual(try r.shape("model/bn1.num_batches_tracked"), [])
        XCTAssertEqual(try r.readDoubles("metrics/val_top1"), [0.5, 0.75])
        XCTAssertEqual(try r.readString("config"), "experiment: flowers\nseed: 42\n")
        XCTAssertEqual(try r.memberNames(), ["config", "metrics", "model", "optimizer"])
        XCTAssertEqual(try r.group("model").memberNames(), ["bn1.num_batches_tracked", "conv_stem.weight"])
        XCTAssertEqual(try r.group("optimizer/groups/0").attribute("params"), .strings(["a.weight", "a.bias"]))
        XCTAssertEqual(try r.datasetTypeName("model/conv_stem.weight"), "float32")
        XCTAssertTrue(r.isGroup("optimizer") && r.isDataset("config") && !r.contains("nope/deeper"))
    }

    func testErrorsNameTheFileAndObject() throws {
        let url = dir.appendingPathComponent("c.h5")
        try writeSample(url)
        let r = try HDF5File(reading: url).root
        XCTAssertThrowsError(try r.readTensor("model/missing")) {
            XCTAssertEqual($0 as? HDF5Error, .missing(file: url.path, path: "/model/missing"))
        }
        XCTAssertThrowsError(try r.readTensor("model")) { XCTAssertTrue("\($0)".contains("is a group, expected a dataset")) }
        XCTAssertThrowsError(try r.readString("metrics/val_top1")) { XCTAssertTrue("\($0)".contains("val_top1")) }
        let junk = dir.appendingPathComponent("junk.h5")
        try Data("not hdf5 at all".utf8).write(to: junk)
        XCTAssertThrowsError(try HDF5File(reading: junk)) { XCTAssertTrue("\($0)".contains("junk.h5: cannot open as HDF5")) }
        XCTAssertThrowsError(try HDF5File(reading: dir.appendingPathComponent("none.h5"))) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    /// A failing writer leaves the previous file untouched and no temporary file behind.
    func testAtomicWriteKeepsThePreviousFileOnFailure() throws {
        let url = dir.appendingPathComponent("last.h5")
        try writeSample(url)
        struct Boom: Error {}
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: url) { root in
            try root.write("model/x", tensor: Tensor([1]))
            throw Boom()
        })
        XCTAssertEqual(try HDF5File(reading: url).root.attribute("format"), .string("finch-test"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["last.h5"])
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: dir.appendingPathComponent("no/such/dir/x.h5")) { _ in }) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
    }

    /// The layout is readable without Finch: h5dump (Debian's hdf5-tools) shows it.
    func testReadableByH5Dump() throws {
        let url = dir.appendingPathComponent("c.h5")
        try writeSample(url)
        let h5dump = ["/usr/bin/h5dump", "/usr/local/bin/h5dump"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let h5dump else {
            return XCTFail("h5dump not found: install hdf5-tools (the README's setup command does)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: h5dump)
        p.arguments = ["-H", url.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        for needle in ["GROUP \"model\"", "DATASET \"conv_stem.weight\"", "H5T_IEEE_F32LE", "SIMPLE { ( 1, 2, 3 )",
                       "H5T_STD_I64LE", "ATTRIBUTE \"format\"", "GROUP \"optimizer\""] {
            XCTAssertTrue(out.contains(needle), "h5dump output lacks \(needle)")
        }
    }
}
