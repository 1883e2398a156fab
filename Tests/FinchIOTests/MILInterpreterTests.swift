import XCTest
import Foundation
import FinchTestSupport

/// Tests/Tools/mil_interpreter.py runs Core ML ML Programs in NumPy on Linux, where Core ML does not exist,
/// and will judge Finch's `.mlpackage` exports. Before it may, it must reproduce timm's logits on
/// coremltools' own conversions of the same architectures (issue 22, verification 2): the committed
/// fixtures in Tests/Fixtures/coreml (made once with torch by Tests/Fixtures/tools/make_coreml_reference.py)
/// and Tests/Tools/check_mil_interpreter.py, which needs only numpy and coremltools.
final class MILInterpreterTests: XCTestCase {
    static let toolsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Tools").standardized

    func testInterpreterReproducesTimmOnCoremltoolsOwnConversions() throws {
        // Only numpy is probed here: `import coremltools` loads torch when installed (10+ s); a missing
        // coremltools fails the checker below with "pip install coremltools".
        guard try PythonTools.available(["numpy"]) else { return }
        let script = Self.toolsDirectory.appendingPathComponent("check_mil_interpreter.py")
        let r = PythonTools.run([script.path])
        print(r.output)
        XCTAssertEqual(r.status, 0, r.output)
        // The checker's last word, so a checker that stopped early (or ran no case) does not pass.
        XCTAssertTrue(r.output.contains("mil_interpreter agrees with timm on 12 coremltools conversions"), r.output)
    }
}
