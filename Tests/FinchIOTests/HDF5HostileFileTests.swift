import XCTest
import Foundation
import FinchTensor
import FinchTestSupport
@testable import FinchIO

/// Crafted and damaged HDF5 files (built with h5py, the tool an attacker or a user would use)
/// give a typed error naming the file and object: never an overflowed byte count, a read past
/// an attribute's end, a blocked open or libhdf5's own diagnostics on stderr.
final class HDF5HostileFileTests: XCTestCase {
    var dir: URL!
    var finch: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/finch").standardized
    }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-h5-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// One file holding every kind of bad object h5py can make.
    func craft() throws -> URL? {
        guard try PythonTools.available(["h5py", "numpy"]) else { return nil }
        let url = dir.appendingPathComponent("hostile.h5")
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let script = """
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f.attrs["format"] = "finch-checkpoint"
            f.attrs["epoch"] = h5py.Empty("i8")
            f.attrs["none"] = np.zeros((0,), dtype="i8")
            f.attrs["pair"] = np.zeros(2, dtype=[("a", "i4"), ("b", "f4")])
            f.attrs["fixed"] = np.bytes_("resnet18")
            m = f.create_group("model")
            m.create_dataset("huge", shape=(2**31, 2**31), dtype="f4", chunks=(1, 1))
            m.create_dataset("big", shape=(2**20, 2**20), dtype="f4", chunks=(1, 1))
            m.create_dataset("ints", data=np.arange(6, dtype="i4").reshape(2, 3))
            m.create_dataset("pairs", data=np.zeros(3, dtype=[("a", "i4"), ("b", "f4")]))
            m.create_dataset("ragged", data=np.array([np.arange(2), np.arange(3)], dtype=object), dtype=h5py.vlen_dtype("i8"))
            m.create_dataset("half", data=np.array([1.5, -2.0], dtype="f2"))
            m.create_dataset("nothing", data=h5py.Empty("f4"))
            m["soft"] = h5py.SoftLink("/model/half")
            m["outside"] = h5py.ExternalLink(sys.argv[2], "/x")
            m["loop"] = m                # a hard link to its own group: a cycle
            f.create_dataset("config", data=["a", "b"], dtype=h5py.string_dtype())
            f.create_dataset("fixed_config", data=np.bytes_("seed: 1"))
        """
        let r = PythonTools.run(["-c", script, url.path, fifo])
        XCTAssertEqual(r.status, 0, r.output)
        return url
    }

    func testCraftedObjectsGiveTypedErrors() throws {
        guard let url = try craft() else { return }
        let f = try HDF5File(reading: url)
        let m = try f.root.group("model")
        func expect(_ call: @autoclosure () throws -> Any, _ needles: String..., line: UInt = #line) {
            XCTAssertThrowsError(try call(), line: line) { e in
                XCTAssertTrue(e is HDF5Error, "\(e)", line: line)
                for n in needles + [url.path] { XCTAssertTrue("\(e)".contains(n), "'\(e)' lacks '\(n)'", line: line) }
            }
        }
        // (2^31)² float32s: the byte count overflows Int; it must not reach libhdf5 as a buffer size.
        expect(try m.readTensor("huge"), "/model/huge", "malformed")
        expect(try m.shape("huge"), "/model/huge")
        // 4 TiB that Int can count, but not in a file of a few kilobytes: refused before allocating.
        expect(try m.readTensor("big"), "/model/big", "needs 4398046511104 bytes, more than the file's")
        expect(try m.readTensor("ints"), "/model/ints", "int32 dataset, expected a float dataset")
        expect(try m.readDoubles("ints"), "/model/ints", "expected a float dataset")
        expect(try m.readTensor("pairs"), "/model/pairs", "compound")
        expect(try m.readInt64s("pairs"), "/model/pairs", "compound")
        expect(try m.readTensor("ragged"), "/model/ragged", "variable-length")
        expect(try m.readTensor("nothing"), "/model/nothing", "null dataspace")
        expect(try m.readTensor("soft"), "/model/soft", "soft link")
        // Following the external link would open the FIFO and block forever.
        expect(try m.readTensor("outside"), "/model/outside", "external link")
        XCTAssertFalse(m.isDataset("outside"))
        expect(try f.root.readString("config"), "/config", "2 strings")
        expect(try f.root.readString("model/ints"), "expected a string")
        expect(try f.root.attribute("epoch"), "/@epoch", "null dataspace")
        expect(try f.root.attribute("pair"), "/@pair", "compound")
        XCTAssertEqual(try f.root.attribute("none"), .int64s([]))
        XCTAssertEqual(try f.root.attribute("fixed"), .string("resnet18"))
        XCTAssertEqual(try f.root.readString("fixed_config"), "seed: 1")
        XCTAssertEqual(try m.readTensor("half").scalars, [1.5, -2.0])
        XCTAssertEqual(try m.readInt64s("ints"), [0, 1, 2, 3, 4, 5])
        // The cycle is real, yet opening (which walks every object header) finished.
        XCTAssertTrue(m.isGroup("loop/loop/loop"))
        expect(try m.readTensor("loop"), "/model/loop", "is a group, expected a dataset")
    }

    /// `finch inspect` on the crafted file: a clean error (the huge dataset), no value printed for
    /// the empty attribute, nothing from libhdf5 on stderr, and no hang on the external link.
    func testInspectReportsInsteadOfPrintingGarbage() throws {
        guard let url = try craft() else { return }
        // The first oversized dataset in name order is /model/big.
        XCTAssertThrowsError(try FileInspection.describe(url)) { XCTAssertTrue("\($0)".contains("'/model/big' is malformed"), "\($0)") }
        let r = ChildProcess.run(finch, ["inspect", url.path])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("'/model/big' is malformed") && r.output.contains("more than the file's"), r.output)
        XCTAssertFalse(r.output.contains("HDF5-DIAG"), r.output)

        // Without the bad datasets the listing completes and says the empty attribute has no value.
        let script = """
        import sys, h5py
        with h5py.File(sys.argv[1], "a") as f:
            for n in ["huge", "big", "pairs", "ragged", "nothing", "soft", "outside"]: del f["model"][n]
            del f["config"]
        """
        XCTAssertEqual(PythonTools.run(["-c", script, url.path]).status, 0)
        let text = try FileInspection.describe(url)
        XCTAssertTrue(text.contains("@epoch = (no value: it has a null dataspace"), text)
        XCTAssertTrue(text.contains("@pair = (a 8-byte compound attribute, not shown)"), text)
        XCTAssertTrue(text.contains("model: 3 tensors"), text)
        XCTAssertTrue(text.contains("  loop  (not a dataset)"), text)
    }

    func testDirectoriesAndFIFOsAreRefusedBeforeLibhdf5() throws {
        XCTAssertThrowsError(try HDF5File(reading: dir)) {
            XCTAssertEqual($0 as? HDF5Error, .cannotOpen(file: dir.path, reason: "it is a directory, not a regular file"))
        }
        let fifo = dir.appendingPathComponent("pipe.h5")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        XCTAssertThrowsError(try HDF5File(reading: fifo)) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
        let r = ChildProcess.run(finch, ["inspect", fifo.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("FIFO"), r.output)
        // (Another branch words this message itself; any refusal naming the option will do.)
        let negative = ChildProcess.run(finch, ["inspect", "--max=-1", fifo.path])
        XCTAssertNotEqual(negative.status, 0)
        XCTAssertTrue(negative.output.contains("max"), negative.output)
    }
}
