import XCTest
import Foundation
import FinchTestSupport
@testable import FinchIO

/// `finch import` as a user runs it: a bad tensor or a bad option ends with a message and no
/// output file; the output never replaces the input.
final class ImportCommandTests: TemporaryDirectoryTestCase {
    var finch: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/finch").standardized
    }

    func run(_ args: [String]) throws -> (status: Int32, output: String) {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: finch.path), "finch is not built")
        return ChildProcess.run(finch, ["import"] + args, in: directory)
    }

    func pth(_ name: String, _ tensors: [CraftedTensor]) throws -> URL {
        let url = file(name)
        try Data(torchZip(pickle: stateDictPickle(tensors), storages: ["0": floatBytes((0..<6).map(Float.init))]).bytes).write(to: url)
        return url
    }

    func testImportWritesTheTensorsAndRefusesBadOnesWithoutOutput() throws {
        let good = try pth("good.pth", [CraftedTensor(name: "w", elements: 6, size: [3, 2], stride: [1, 3])])
        let out = file("good.safetensors")
        var r = try run([good.path, "--output", out.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SafeTensorsFile(contentsOf: out).tensor("w").scalars, [0, 3, 1, 4, 2, 5])

        // The file: size [-1] once copied heap memory into the output.
        let bad = try pth("bad.pth", [CraftedTensor(name: "fc.weight", elements: 6, size: [-1], stride: [1])])
        let badOut = file("bad.safetensors")
        r = try run([bad.path, "--output", badOut.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("\(bad.path): tensor 'fc.weight': size [-1]: dimension 0 is negative"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: badOut.path))
        XCTAssertEqual(try contentsOfDirectory(), ["bad.pth", "good.pth", "good.safetensors"])
    }

    func testTheOutputCannotBeTheInput() throws {
        let src = try pth("w.pth", [CraftedTensor(name: "w", elements: 6, size: [6], stride: [1])])
        let before = try Data(contentsOf: src)
        try FileManager.default.createSymbolicLink(at: file("link.pth"), withDestinationURL: src)
        try FileManager.default.linkItem(at: src, to: file("hard.pth"))
        for output in [src.path, "w.pth", "./w.pth", file("link.pth").path, file("hard.pth").path] {
            let r = try run([src.path, "--output", output])
            XCTAssertNotEqual(r.status, 0, output)
            XCTAssertTrue(r.output.contains("is the input file itself"), "\(output): \(r.output)")
        }
        XCTAssertEqual(try Data(contentsOf: src), before)
        let r = try run([src.path, "--output", file("x.safetensors").path, "--num-classes", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("--num-classes must be between 1 and 1000000, got 0"), r.output)
    }
}
