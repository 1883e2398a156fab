import XCTest
import FinchTensor
@testable import FinchIO

/// The binary16/bfloat16/float8 conversions, checked against the rounding rule itself (every
/// midpoint between neighbouring representable values) and, where Swift has it, `Float16`.
final class HalfFloatTests: XCTestCase {
    func testEveryFloat16PatternWidensAndNarrowsBack() {
        for h in 0...UInt16.max {
            let f = float(fromFloat16Bits: h)
            let back = float16Bits(f)
            if f.isNaN {
                XCTAssertTrue(float(fromFloat16Bits: back).isNaN, "NaN pattern \(h) lost its NaN-ness")
                XCTAssertEqual(back & 0x8000, h & 0x8000, "NaN pattern \(h) lost its sign")
            } else {
                XCTAssertEqual(back, h, "pattern \(String(h, radix: 16))")
            }
        }
    }

    /// Between each pair of neighbouring finite halves (and past the largest one, towards
    /// infinity) the midpoint must round to the even neighbour, and one Float ulp either side to
    /// the nearer one. Midpoints need one bit more than binary16 has, so they are exact in Float.
    func testFloat16RoundsToNearestEvenAtEveryMidpoint() {
        for h in UInt16(0)..<0x7C00 {
            for sign in [UInt16(0), 0x8000] {
                let a = float(fromFloat16Bits: h), lowBits = h | sign
                let b: Float = h == 0x7BFF ? 65536 : float(fromFloat16Bits: h + 1)
                let highBits = (h + 1) | sign
                let mid = (a + b) / 2
                let s: Float = sign == 0 ? 1 : -1
                XCTAssertEqual(float16Bits(s * mid), h & 1 == 0 ? lowBits : highBits, "midpoint above \(h)")
                XCTAssertEqual(float16Bits(s * mid.nextDown), lowBits, "just below midpoint above \(h)")
                XCTAssertEqual(float16Bits(s * mid.nextUp), highBits, "just above midpoint above \(h)")
                XCTAssertEqual(float16Bits(s * a), lowBits)
            }
        }
    }

    func testFloat16EdgeCases() {
        XCTAssertEqual(float16Bits(0), 0x0000)
        XCTAssertEqual(float16Bits(-0.0), 0x8000)
        XCTAssertEqual(float16Bits(1), 0x3C00)
        XCTAssertEqual(float16Bits(65504), 0x7BFF)
        XCTAssertEqual(float16Bits(65519.996), 0x7BFF)
        XCTAssertEqual(float16Bits(65520), 0x7C00)
        XCTAssertEqual(float16Bits(-65520), 0xFC00)
        XCTAssertEqual(float16Bits(.greatestFiniteMagnitude), 0x7C00)
        XCTAssertEqual(float16Bits(.infinity), 0x7C00)
        XCTAssertEqual(float16Bits(-.infinity), 0xFC00)
        XCTAssertEqual(float16Bits(0x1p-14), 0x0400)                 // smallest normal
        XCTAssertEqual(float16Bits(0x1p-14 - 0x1p-25), 0x0400)       // tie between 0x3FF and 0x400 → even
        XCTAssertEqual(float16Bits(0x1p-24), 0x0001)                 // smallest subnormal
        XCTAssertEqual(float16Bits(0x1p-25), 0x0000)                 // tie with zero → even zero
        XCTAssertEqual(float16Bits(Float(0x1p-25).nextUp), 0x0001)
        XCTAssertEqual(float16Bits(-0x1p-25), 0x8000)
        XCTAssertEqual(float16Bits(3 * 0x1p-25), 0x0002)             // 1.5 units → even 2
        XCTAssertEqual(float16Bits(.leastNonzeroMagnitude), 0x0000)
        XCTAssertEqual(float16Bits(-.leastNonzeroMagnitude), 0x8000)
        XCTAssertEqual(float(fromFloat16Bits: 0x0001), 0x1p-24)
        XCTAssertEqual(float(fromFloat16Bits: 0x03FF), 1023 * 0x1p-24)
        XCTAssertEqual(float(fromFloat16Bits: 0x8001), -0x1p-24)
        XCTAssertEqual(float(fromFloat16Bits: 0x7C00), .infinity)
        XCTAssertEqual(float(fromFloat16Bits: 0xFC00), -.infinity)
        XCTAssertEqual(float(fromFloat16Bits: 0xC000), -2)

        // NaNs stay NaN, including one whose payload lives only in bits binary16 drops.
        XCTAssertTrue(float(fromFloat16Bits: float16Bits(.nan)).isNaN)
        XCTAssertTrue(float(fromFloat16Bits: float16Bits(Float(bitPattern: 0x7F80_0001))).isNaN)
        XCTAssertTrue(float(fromFloat16Bits: float16Bits(Float(bitPattern: 0xFF80_0001))).isNaN)
        XCTAssertEqual(float16Bits(Float(bitPattern: 0xFFC0_0000)) & 0x8000, 0x8000)
        XCTAssertTrue(float(fromFloat16Bits: 0x7C01).isNaN)
    }

    #if !(os(macOS) && arch(x86_64))
    /// Swift's own Float16 (hardware or compiler-rt conversions) as an independent reference.
    func testFloat16AgreesWithSwiftFloat16() {
        for h in 0...UInt16.max {
            XCTAssertTrue(sameFloat(float(fromFloat16Bits: h), Float(Float16(bitPattern: h))), "pattern \(h)")
        }
        var rng = RandomGenerator(seed: 16)
        for _ in 0..<200_000 {
            // Random bit patterns cover every exponent; a scaled uniform stresses the half range.
            let f = rng.next() & 1 == 0 ? Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                                         : rng.uniform(-70000, 70000) * Float(sign: .plus, exponent: -rng.nextInt(below: 30), significand: 1)
            let expected = Float16(f).bitPattern
            if f.isNaN {
                XCTAssertTrue(Float16(bitPattern: float16Bits(f)).isNaN)
            } else {
                XCTAssertEqual(float16Bits(f), expected, "\(f) (bits \(String(f.bitPattern, radix: 16)))")
            }
        }
    }
    #endif

    func testBFloat16RoundsToNearestEven() {
        for b in UInt16(0)...UInt16.max {
            let base = UInt32(b) << 16
            let f = Float(bitPattern: base)
            if f.isNaN || f.isInfinite {
                XCTAssertEqual(bfloat16Bits(f), f.isNaN ? b | 0x0040 : b)
                continue
            }
            XCTAssertEqual(float(fromBFloat16Bits: b).bitPattern, base)
            XCTAssertEqual(bfloat16Bits(f), b)
            // Next pattern up in magnitude; past the largest finite one that is infinity, which is right.
            let up = b &+ 1
            XCTAssertEqual(bfloat16Bits(Float(bitPattern: base | 0x7FFF)), b)
            XCTAssertEqual(bfloat16Bits(Float(bitPattern: base | 0x8000)), b & 1 == 0 ? b : up, "tie above \(b)")
            XCTAssertEqual(bfloat16Bits(Float(bitPattern: base | 0x8001)), up)
        }
        XCTAssertEqual(bfloat16Bits(1.0 / 3.0), 0x3EAB)
        XCTAssertEqual(bfloat16Bits(.greatestFiniteMagnitude), 0x7F80)
        XCTAssertEqual(bfloat16Bits(.leastNonzeroMagnitude), 0x0000)
        XCTAssertEqual(bfloat16Bits(-0.0), 0x8000)
        XCTAssertTrue(float(fromBFloat16Bits: bfloat16Bits(Float(bitPattern: 0x7F80_0001))).isNaN)
        XCTAssertTrue(float(fromBFloat16Bits: bfloat16Bits(Float(bitPattern: 0xFFC0_0000))).sign == .minus)
    }

    func testFloat8Decoding() {
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x38), 1)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x7E), 448)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0xFE), -448)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x78), 256)                  // exponent 15 is still finite
        XCTAssertTrue(float(fromFloat8E4M3Bits: 0x7F).isNaN)
        XCTAssertTrue(float(fromFloat8E4M3Bits: 0xFF).isNaN)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x01), 0x1p-9)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x07), 7 * 0x1p-9)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x08), 0x1p-6)
        XCTAssertEqual(float(fromFloat8E4M3Bits: 0x80).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(float(fromFloat8E5M2Bits: 0x3C), 1)
        XCTAssertEqual(float(fromFloat8E5M2Bits: 0x7B), 57344)
        XCTAssertEqual(float(fromFloat8E5M2Bits: 0x7C), .infinity)
        XCTAssertTrue(float(fromFloat8E5M2Bits: 0x7D).isNaN)
        XCTAssertEqual(float(fromFloat8E5M2Bits: 0x01), 0x1p-16)
        // Values strictly increase with the pattern over the positive finite range of both formats.
        for b in UInt8(1)..<0x7F { XCTAssertLessThan(float(fromFloat8E4M3Bits: b - 1), float(fromFloat8E4M3Bits: b)) }
        for b in UInt8(1)...0x7C { XCTAssertLessThan(float(fromFloat8E5M2Bits: b - 1), float(fromFloat8E5M2Bits: b)) }
    }
}
