import XCTest
import Foundation
import FinchTensor
import FinchTestSupport
@testable import FinchIO

/// Strings live in HDF5's global heap, which libhdf5 never checksums; Finch stores a CRC-32
/// beside each one (`name.crc32` for an attribute, `@crc32` on a string dataset) and checks it
/// on every read, so a flipped bit in a config or a class name is refused, naming the object.
final class HDF5StringChecksumTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-h5-strings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let config = "experiment: zinnia-run\nmodel:\n  name: unique_config_marker_net\n"
    /// Enough names (over 4 KiB) that libhdf5 stores the list outside the attribute heap's blocks.
    static let classes = ["zinnia_marker_class", "rose"] + (0..<300).map { "flower-class-\($0)" }

    func writeFile(_ url: URL) throws {
        try HDF5File.writeAtomically(to: url) { root in
            // More than eight attributes: the root's attributes go to dense storage.
            try root.setAttribute("format", .string("finch-checkpoint"))
            for (i, k) in ["version", "epoch", "global_step", "num_classes"].enumerated() { try root.setAttribute(k, .int64(Int64(i))) }
            try root.setAttribute("best_metric", .double(0.5))
            try root.setAttribute("model", .string("unique_model_marker_net"))
            try root.setAttribute("classes", .strings(Self.classes))
            try root.setAttribute("empty", .string(""))
            try root.setAttribute("none", .strings([]))
            try root.write("config", string: Self.config)
            try root.write("model/w", tensor: Tensor([1, 2, 3], shape: [3]))
        }
    }

    func flipBit(in url: URL, inside text: String, at index: Int) throws {
        var bytes = try Data(contentsOf: url)
        let r = try XCTUnwrap(bytes.range(of: Data(text.utf8)), "'\(text)' not found in the file")
        XCTAssertNil(bytes.range(of: Data(text.utf8), in: r.upperBound..<bytes.endIndex), "'\(text)' is stored twice")
        bytes[r.lowerBound + index] ^= 0x10
        try bytes.write(to: url)
    }

    func assertCorrupted(_ expression: @autoclosure () throws -> some Any, _ url: URL, _ path: String, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), line: line) { e in
            guard case .corrupted(let file, let p, let detail)? = e as? HDF5Error else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(file, url.path, line: line)
            XCTAssertEqual(p, path, line: line)
            XCTAssertTrue(detail.contains("CRC-32"), detail, line: line)
        }
    }

    func testStringsReadBackAndTheirChecksumsAreNotListed() throws {
        let url = dir.appendingPathComponent("c.h5")
        try writeFile(url)
        let r = try HDF5File(reading: url).root
        XCTAssertEqual(try r.readString("config"), Self.config)
        XCTAssertEqual(try r.attribute("classes"), .strings(Self.classes))
        XCTAssertEqual(try r.attribute("model"), .string("unique_model_marker_net"))
        XCTAssertEqual(try r.attribute("empty"), .string(""))
        XCTAssertEqual(try r.attribute("none"), .strings([]))
        XCTAssertEqual(try r.attribute("classes.crc32"), .int64(Int64(HDF5Group.stringChecksum(Self.classes.map { Array($0.utf8) }))))
        XCTAssertFalse(r.attributeNames().contains { $0.hasSuffix(".crc32") }, "\(r.attributeNames())")
        XCTAssertTrue(r.attributeNames().contains("classes"))
        // The config now counts as a checksummed dataset.
        XCTAssertEqual(try r.verifyData().checksummed, 2)
        // Replacing a string by a number drops its checksum with it.
        let other = dir.appendingPathComponent("o.h5")
        try HDF5File.writeAtomically(to: other) { root in
            try root.setAttribute("x", .string("text"))
            try root.setAttribute("x", .int64(5))
        }
        XCTAssertFalse(try HDF5File(reading: other).root.hasAttribute("x.crc32"))
    }

    func testAFlippedBitInTheConfigTextIsRefusedNamingTheDataset() throws {
        let url = dir.appendingPathComponent("c.h5")
        try writeFile(url)
        try flipBit(in: url, inside: "unique_config_marker_net", at: 3)
        let r = try HDF5File(reading: url).root
        assertCorrupted(try r.readString("config"), url, "/config")
        assertCorrupted(try r.verifyData(), url, "/config")
        XCTAssertEqual(try r.attribute("model"), .string("unique_model_marker_net"))
        XCTAssertThrowsError(try FileInspection.describe(url)) {
            XCTAssertTrue("\($0)".contains("'/config' is corrupted"), "\($0)")
        }
    }

    func testAFlippedBitInAClassNameIsRefusedNamingTheAttribute() throws {
        for (text, attribute) in [("zinnia_marker_class", "classes"), ("flower-class-299", "classes"), ("unique_model_marker_net", "model")] {
            let url = dir.appendingPathComponent("c.h5")
            try writeFile(url)
            try flipBit(in: url, inside: text, at: text.utf8.count - 2)
            let r = try HDF5File(reading: url).root
            assertCorrupted(try r.attribute(attribute), url, "/@\(attribute)")
            XCTAssertEqual(try r.readString("config"), Self.config)
            XCTAssertThrowsError(try FileInspection.describe(url), text) {
                XCTAssertTrue("\($0)".contains("'/@\(attribute)' is corrupted"), "\($0)")
            }
        }
    }

    /// Attributes below the root (an optimizer group's parameter names) are checked by
    /// `verifyData`, so `finch inspect` refuses damage there too, not only `--resume`.
    func testAFlippedBitInANestedAttributeIsRefusedByVerifyData() throws {
        let url = dir.appendingPathComponent("c.h5")
        try HDF5File.writeAtomically(to: url) { root in
            let g = try root.createGroup("optimizer/groups/0")
            try g.setAttribute("params", .strings(["head.weight", "unique_param_marker.bias"]))
        }
        XCTAssertEqual(try HDF5File(reading: url).root.verifyData().datasets, 0)
        try flipBit(in: url, inside: "unique_param_marker", at: 2)
        assertCorrupted(try HDF5File(reading: url).root.verifyData(), url, "/optimizer/groups/0@params")
        XCTAssertThrowsError(try FileInspection.describe(url)) {
            XCTAssertTrue("\($0)".contains("'/optimizer/groups/0@params' is corrupted"), "\($0)")
        }
    }

    /// A checksum attribute that is not a 32-bit value is malformed, not silently ignored.
    func testAMalformedChecksumIsAnError() throws {
        let url = dir.appendingPathComponent("c.h5")
        try HDF5File.writeAtomically(to: url) { root in
            try root.setAttribute("model", .string("net"))
            try root.setAttribute("model.crc32", .double(1))
        }
        XCTAssertThrowsError(try HDF5File(reading: url).root.attribute("model")) {
            guard case .malformed(_, let path, _)? = $0 as? HDF5Error else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "/@model.crc32")
        }
    }

    /// Files without checksums (older Finch, h5py) still read, and h5py reads Finch's strings
    /// as before: attributes as `str`, the config dataset as `bytes`.
    func testOlderFilesReadAndH5pyReadsTheStrings() throws {
        guard try PythonTools.available(["h5py", "numpy"]) else { return }
        let old = dir.appendingPathComponent("old.h5")
        let script = """
        import sys, h5py
        with h5py.File(sys.argv[1], "w") as f:
            f.attrs["model"] = "resnet18"
            f.attrs["classes"] = ["a", "b"]
            f["config"] = "seed: 1\\n"
        with h5py.File(sys.argv[2], "r") as f:
            print(repr(f.attrs["model"]), list(f.attrs["classes"])[:2], repr(f["config"][()][:10]), f["config"].attrs["crc32"] > 0)
        """
        let url = dir.appendingPathComponent("c.h5")
        try writeFile(url)
        let run = PythonTools.run(["-c", script, old.path, url.path])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.output.trimmingCharacters(in: .whitespacesAndNewlines),
                       "'unique_model_marker_net' ['zinnia_marker_class', 'rose'] b'experiment' True")
        let r = try HDF5File(reading: old).root
        XCTAssertEqual(try r.attribute("model"), .string("resnet18"))
        XCTAssertEqual(try r.attribute("classes"), .strings(["a", "b"]))
        XCTAssertEqual(try r.readString("config"), "seed: 1\n")
    }

    func testCRC32MatchesZlib() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
    }
}
