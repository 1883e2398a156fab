import XCTest
import Foundation

/// Docs/FinchFromSwift.md shows Examples/Classify/Sources/FromSwift/FromSwift.swift block by block;
/// `.ci/consumer` compiles and runs that file, so the page's code is what CI builds only while the
/// blocks, joined, equal the file.
final class DocsExampleTests: XCTestCase {
    func testTheSwiftPageIsTheCompiledExample() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let doc = try String(contentsOf: repo.appendingPathComponent("Docs/FinchFromSwift.md"), encoding: .utf8)
        let source = try String(contentsOf: repo.appendingPathComponent("Examples/Classify/Sources/FromSwift/FromSwift.swift"), encoding: .utf8)
        var blocks: [String] = []
        var rest = doc[...]
        while let open = rest.range(of: "```swift\n") {
            guard let close = rest[open.upperBound...].range(of: "```") else { break }
            blocks.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        XCTAssertEqual(blocks.count, 5, "the page shows the program in five blocks")
        XCTAssertEqual(blocks.joined(), source, "Docs/FinchFromSwift.md's swift blocks differ from FromSwift.swift: copy one into the other")
        // The page names the APIs it walks through.
        for api in ["TrainConfig.parse", "TrainingSetup", "TrainerCallback", "ModelExport.load", "ModelInference.predict"] {
            XCTAssertTrue(source.contains(api), api)
        }
    }
}
