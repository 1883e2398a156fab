import XCTest
import Foundation
import FinchTensor
import FinchNN
@testable import FinchIO

/// Crafted `.pth` files (see CraftedTorchFiles.swift): every bad size, stride, offset or storage
/// is refused with a message naming the file and the tensor, before any byte is copied.
final class TorchCheckpointHardeningTests: TemporaryDirectoryTestCase {
    func write(_ zip: CraftedZip, _ name: String = "crafted.pth") throws -> URL {
        let url = file(name)
        try Data(zip.bytes).write(to: url)
        return url
    }

    /// Reads `tensors` over one storage of `values` and returns the error's text.
    func refusal(_ tensors: [CraftedTensor], storage values: [Float] = (0..<6).map(Float.init),
                 file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let url = try write(torchZip(pickle: stateDictPickle(tensors), storages: ["0": floatBytes(values)]))
        do {
            let got = try TorchCheckpoint.read(url)
            XCTFail("read \(got.count) tensors from a bad file", file: file, line: line)
            return ""
        } catch let e as TorchFileError {
            XCTAssertEqual(e.file, url.path, file: file, line: line)
            return e.description
        }
    }

    func testTheCraftedLayoutReadsLikeATorchFile() throws {
        let url = try write(torchZip(pickle: stateDictPickle([
            CraftedTensor(name: "w", elements: 6, size: [2, 3], stride: [3, 1]),
            CraftedTensor(name: "wt", elements: 6, size: [3, 2], stride: [1, 3]),
            CraftedTensor(name: "tail", elements: 6, offset: 4, size: [2], stride: [1]),
            CraftedTensor(name: "broadcast", elements: 6, offset: 5, size: [1, 3, 1], stride: [7, 0, 99]),
        ]), storages: ["0": floatBytes((0..<6).map(Float.init))]))
        let got = Dictionary(uniqueKeysWithValues: try TorchCheckpoint.read(url).map { ($0.name, $0.value) })
        guard case .float(let w)? = got["w"], case .float(let wt)? = got["wt"], case .float(let tail)? = got["tail"],
              case .float(let b)? = got["broadcast"] else { return XCTFail("\(got)") }
        XCTAssertEqual(w.scalars, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(wt.scalars, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(tail.scalars, [4, 5])
        XCTAssertEqual(b.shape, [1, 3, 1])
        XCTAssertEqual(b.scalars, [5, 5, 5])
    }

    /// The issue's example: a size of [-1] made `finch import` copy heap memory into its output.
    func testNegativeSizeStrideOrOffsetIsRefusedNamingTheTensor() throws {
        XCTAssertTrue(try refusal([CraftedTensor(name: "fc.weight", elements: 6, size: [-1], stride: [1])])
            .contains("tensor 'fc.weight': size [-1]: dimension 0 is negative"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "fc.weight", elements: 6, size: [2, 3], stride: [3, -1])])
            .contains("tensor 'fc.weight': stride [3, -1]: dimension 1 is negative"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "b", elements: 6, offset: -2, size: [2], stride: [1])])
            .contains("tensor 'b': storage offset -2 is negative"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "b", elements: 6, size: [2, 3], stride: [1])])
            .contains("tensor 'b': size [2, 3] has 2 dimensions but stride [1] has 1"))
    }

    func testViewsReachingPastTheirStorageAreRefused() throws {
        XCTAssertTrue(try refusal([CraftedTensor(name: "x", elements: 6, offset: 5, size: [4], stride: [1])])
            .contains("tensor 'x': offset 5, size [4], stride [1] reach element 8 of a storage of 6"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "x", elements: 6, size: [2, 2], stride: [1, 5])])
            .contains("reach element 6 of a storage of 6"))
        // Products and strides chosen so that unchecked arithmetic would wrap to a small index.
        XCTAssertTrue(try refusal([CraftedTensor(name: "x", elements: 6, size: [1 << 40, 1 << 40], stride: [1, 1])])
            .contains("tensor 'x': size [1099511627776, 1099511627776] has more elements than can be addressed"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "x", elements: 6, size: [3], stride: [Int.max / 2 + 1])])
            .contains("tensor 'x': size [3] with stride [4611686018427387904] reaches beyond any storage"))
        // The storage in the archive is shorter than the pickle says.
        XCTAssertTrue(try refusal([CraftedTensor(name: "x", elements: 600, size: [2], stride: [1])])
            .contains("tensor 'x': storage '0' is declared with 600 elements but holds 6 (truncated?)"))
    }

    func testUnknownStorageTypesAndMissingStoragesAreRefused() throws {
        XCTAssertTrue(try refusal([CraftedTensor(name: "z", type: "ComplexFloatStorage", elements: 3, size: [3], stride: [1])])
            .contains("tensor 'z': storage type ComplexFloatStorage is not supported"))
        XCTAssertTrue(try refusal([CraftedTensor(name: "z", storage: "7", elements: 3, size: [3], stride: [1])])
            .contains("tensor 'z': its storage '7' is not in the archive"))
    }

    /// A zero-stride view of one element, or one storage viewed again and again through the
    /// memo, would decode gigabytes from a few bytes: refused by the file-size budget.
    func testDecodedBytesAreBoundedByTheFileSize() throws {
        XCTAssertTrue(try refusal([CraftedTensor(name: "huge", elements: 6, size: [1 << 30], stride: [0])])
            .contains("tensor 'huge': 1073741824 elements (4294967296 bytes) are more than a file of"))

        var p = PickleBytes()
        p.emptyDict()
        p.string("t0"); p.tensor(storage: "0", elements: 1 << 18, offset: 0, size: [1 << 18], stride: [1]); p.put(0); p.setItem()
        for i in 1..<40 { p.string("t\(i)"); p.get(0); p.setItem() }
        p.stop()
        let url = try write(torchZip(pickle: p.bytes, storages: ["0": [UInt8](repeating: 0, count: 4 << 18)]))
        XCTAssertThrowsError(try TorchCheckpoint.read(url)) {
            XCTAssertTrue("\($0)".contains("\(url.path): tensor 't"), "\($0)")
            XCTAssertTrue("\($0)".contains("are more than a file of"), "\($0)")
        }
    }

    /// d0 = {w: tensor}; d(k+1) = {a: dk, b: dk} sixty times over: 2^60 names if walked naively.
    func testSharedDictsCannotMultiplyTheWalk() throws {
        var p = PickleBytes()
        p.emptyDict(); p.put(0)
        p.string("w"); p.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]); p.setItem()
        for level in 1...60 {
            p.emptyDict(); p.put(level)
            p.mark(); p.string("a"); p.get(level - 1); p.string("b"); p.get(level - 1); p.op(0x75)  // SETITEMS
        }
        // The root holds a tensor itself, so it is the state dict and the shared tower is walked.
        p.string("root"); p.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]); p.setItem()
        p.stop()
        let url = try write(torchZip(pickle: p.bytes, storages: ["0": floatBytes((0..<6).map(Float.init))]))
        XCTAssertThrowsError(try TorchCheckpoint.read(url)) {
            XCTAssertTrue("\($0)".contains("\(url.path): the pickle refers to the same entries over and over"), "\($0)")
        }
    }

    /// A dict that contains itself, and a state dict nested 100,000 levels deep: an error, not a
    /// stack overflow (building, walking and freeing the pickle all avoid recursion).
    func testCyclicAndDeeplyNestedStateDictsAreRefused() throws {
        var p = PickleBytes()
        p.emptyDict(); p.put(0)
        p.string("w"); p.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]); p.setItem()
        p.string("self"); p.get(0); p.setItem()
        p.stop()
        let cyclic = try write(torchZip(pickle: p.bytes, storages: ["0": floatBytes((0..<6).map(Float.init))]), "cyclic.pth")
        XCTAssertThrowsError(try TorchCheckpoint.read(cyclic)) {
            XCTAssertTrue("\($0)".contains("cyclic.pth: state dict nested more than 64 levels under 'self.self."), "\($0)")
        }

        var q = PickleBytes()
        q.emptyDict()
        q.string("w"); q.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]); q.setItem()
        q.string("a")
        for _ in 0..<100_000 { q.emptyDict(); q.string("a") }
        q.op(0x4E)                                      // NONE, the innermost value
        for _ in 0..<100_000 { q.setItem() }
        q.setItem()
        q.stop()
        let deep = try write(torchZip(pickle: q.bytes, storages: ["0": floatBytes((0..<6).map(Float.init))]), "deep.pth")
        XCTAssertThrowsError(try TorchCheckpoint.read(deep)) {
            XCTAssertTrue("\($0)".contains("deep.pth: state dict nested more than 64 levels"), "\($0)")
        }
    }

    /// A megabyte-long key in a dict that contains itself would build names of 64 MB and more.
    func testOverlongNamesAreRefused() throws {
        var p = PickleBytes()
        p.emptyDict(); p.put(0)
        p.string("w"); p.tensor(storage: "0", elements: 6, offset: 0, size: [6], stride: [1]); p.setItem()
        p.string(String(repeating: "k", count: 1 << 20)); p.get(0); p.setItem()
        p.stop()
        let url = try write(torchZip(pickle: p.bytes, storages: ["0": floatBytes((0..<6).map(Float.init))]))
        XCTAssertThrowsError(try TorchCheckpoint.read(url)) {
            XCTAssertTrue("\($0)".hasPrefix("\(url.path): tensor name 'kkk"), "\(String("\($0)".prefix(300)))")
            XCTAssertTrue("\($0)".hasSuffix("…' is longer than 4096 bytes"), "\(String("\($0)".suffix(300)))")
        }
    }

    func testDirectoriesAndFIFOsAreRefusedWithoutBlocking() throws {
        let fifo = file("weights.pth")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        let sub = file("folder.safetensors")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        for (url, kind) in [(fifo, "FIFO"), (sub, "directory")] {
            XCTAssertThrowsError(try WeightsFile.format(of: url)) {
                XCTAssertEqual($0 as? InputFileError, .notRegular(path: url.path, kind: kind, what: "weights file"))
            }
            XCTAssertThrowsError(try WeightsFile.read(url)) { XCTAssertTrue("\($0)".contains("is a \(kind), not a regular file"), "\($0)") }
            XCTAssertThrowsError(try TorchCheckpoint.read(url)) {
                XCTAssertEqual($0 as? TorchFileError, TorchFileError(file: url.path, reason: "not a regular file (it is a \(kind))"))
            }
            XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url)) {
                XCTAssertEqual($0 as? SafeTensorsError, .unreadable(file: url.path, reason: "not a regular file (it is a \(kind))"))
            }
            XCTAssertThrowsError(try FileInspection.describe(url)) { XCTAssertTrue("\($0)".contains(url.path), "\($0)") }
            XCTAssertThrowsError(try KeyMapping(contentsOf: url)) { XCTAssertTrue("\($0)".contains("\(url.path): cannot read the mapping file (not a regular file"), "\($0)") }
            XCTAssertFalse(TorchCheckpoint.isTorchFile(url))
        }
        let onnx = file("model.onnx")
        XCTAssertEqual(mkfifo(onnx.path, 0o600), 0)
        XCTAssertThrowsError(try FileInspection.describe(onnx)) {
            XCTAssertEqual($0 as? InputFileError, .notRegular(path: onnx.path, kind: "FIFO", what: "ONNX model"))
        }
    }
}

/// The from-bytes entry points (for fuzzing) run the same checks as the file readers.
final class InMemoryReaderTests: XCTestCase {
    func testBytesAreReadAndRefusedLikeFiles() throws {
        let good = torchZip(pickle: stateDictPickle([CraftedTensor(name: "w", elements: 6, size: [3], stride: [2])]),
                            storages: ["0": floatBytes((0..<6).map(Float.init))])
        guard case .float(let w)? = try TorchCheckpoint.read(bytes: Data(good.bytes), name: "mem.pth").first?.value else { return XCTFail() }
        XCTAssertEqual(w.scalars, [0, 2, 4])
        let bad = torchZip(pickle: stateDictPickle([CraftedTensor(name: "w", elements: 6, size: [-1], stride: [1])]),
                           storages: ["0": floatBytes((0..<6).map(Float.init))])
        XCTAssertThrowsError(try TorchCheckpoint.read(bytes: Data(bad.bytes), name: "mem.pth")) {
            XCTAssertEqual("\($0)", "mem.pth: tensor 'w': size [-1]: dimension 0 is negative")
        }
        XCTAssertThrowsError(try TorchCheckpoint.read(bytes: Data(), name: "empty")) {
            XCTAssertEqual("\($0)", "empty: not a PyTorch .pth/.pt file (no ZIP signature)")
        }

        var st = Data()
        let header = Array(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { st.append(contentsOf: $0) }
        st.append(contentsOf: header)
        st.append(Data(floatBytes([1.5, -2])))
        XCTAssertEqual(try SafeTensorsFile(bytes: st, name: "mem.safetensors").tensor("a").scalars, [1.5, -2])
        XCTAssertThrowsError(try SafeTensorsFile(bytes: st.dropLast(), name: "mem.safetensors")) {
            XCTAssertEqual($0 as? SafeTensorsError, .dataPastEnd(file: "mem.safetensors", key: "a", end: 8, bufferSize: 7))
        }
    }
}
