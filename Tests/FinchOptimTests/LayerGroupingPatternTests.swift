import XCTest
@testable import FinchOptim

/// A layer-grouping pattern is compiled when its rule is made: a bad one is an error there, not a
/// trap in the middle of building optimizer groups.
final class LayerGroupingPatternTests: XCTestCase {
    func testBadPatternThrowsAtRuleCreation() throws {
        XCTAssertThrowsError(try LayerGroupMatcher.Rule(group: 0, #"^blocks\.(\d+"#)) { e in
            XCTAssertTrue("\(e)".contains(#"layer grouping pattern '^blocks\.(\d+' is not a valid regular expression"#), "\(e)")
        }
        let m = LayerGroupMatcher([try LayerGroupMatcher.Rule(group: 0, "^stem"), try LayerGroupMatcher.Rule(group: 1, #"^blocks\.(\d+)"#)])
        let (ids, count) = m.layerIds(["stem.weight", "blocks.1.weight", "blocks.0.weight", "head.weight"])
        XCTAssertEqual(count, 4)
        XCTAssertEqual(ids, ["stem.weight": 0, "blocks.0.weight": 1, "blocks.1.weight": 2, "head.weight": 3])
    }
}
