import XCTest
import COpenBLAS
import CHDF5
import CPNG
import CJPEG
import Foundation
@testable import FinchTensor

/// The four system libraries resolve through pkg-config, link and answer a call.
final class SystemLibrariesTests: XCTestCase {
    func testOpenBLASMultiplies() {
        var a: [Float] = [1, 2, 3, 4]      // [[1,2],[3,4]]
        var b: [Float] = [5, 6, 7, 8]      // [[5,6],[7,8]]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, &a, 2, &b, 2, 0, &c, 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
    }

    func testHDF5ReportsVersion() {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        XCTAssertEqual(H5get_libversion(&major, &minor, &release), 0)
        XCTAssertEqual(major, 1)
        XCTAssertGreaterThanOrEqual(minor, 10)
    }

    func testLibPNGReportsVersion() {
        XCTAssertGreaterThanOrEqual(png_access_version_number(), 10600)
    }

    func testLibJPEGCreatesErrorManager() {
        var err = jpeg_error_mgr()
        let p = jpeg_std_error(&err)
        XCTAssertNotNil(p)
        XCTAssertNotNil(err.error_exit)
    }

    /// OpenBLAS 0.3.21 does not know recent Xeons and would run its SSE3 "Prescott" kernels on
    /// them; Finch re-selects by CPU features, so an AVX2 machine never runs Prescott kernels.
    func testOpenBLASUsesKernelsForThisCPU() {
        let flags = BLASCoreSelection.cpuFlags()
        let core = Parallel.blasCore
        XCTAssertNotEqual(core, "unknown", "openblas_get_corename not found")
        if flags.contains("avx2") && flags.contains("fma") && ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            XCTAssertNotEqual(core.lowercased(), "prescott", "AVX2 CPU left on OpenBLAS's SSE3 kernels")
        }
        print("OpenBLAS core: \(core)")
    }
}
