import XCTest
import FinchTensor

func assertClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "lengths differ", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= atol + rtol * abs(y)) {
        XCTFail("element \(i): \(x) vs \(y)", file: file, line: line)
        return
    }
}

/// Central differences (Float32, h = 1e-2) on a scalar-valued function; see the tensor tests'
/// GradCheck for the error budget behind the 5e-3 tolerances.
func assertGradientsNN(_ inputs: [Tensor], h: Float = 1e-2, tol: Float = 5e-3,
                       file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
    for x in inputs { x.grad = nil }
    f(inputs).backward()
    for (n, x) in inputs.enumerated() {
        let analytic = x.grad!.scalars
        let p = x.basePointer
        for i in 0..<x.count {
            let saved = p[i]
            p[i] = saved + h
            let up = noGrad { f(inputs).item }
            p[i] = saved - h
            let down = noGrad { f(inputs).item }
            p[i] = saved
            let numeric = (up - down) / (2 * h)
            if abs(numeric - analytic[i]) > tol + tol * abs(numeric) {
                XCTFail("input \(n) element \(i): analytic \(analytic[i]) vs numeric \(numeric)", file: file, line: line)
                return
            }
        }
    }
}
