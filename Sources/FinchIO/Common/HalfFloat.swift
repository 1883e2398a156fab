// IEEE binary16 and bfloat16 conversions done on bit patterns.
//
// Swift's `Float16` is missing on Intel macOS, and the package declares macOS, so the
// conversions are written out here; the tests check them against `Float16` where it exists.

/// Nearest binary16 to `f`, ties to even. Overflow gives ±infinity, tiny values give
/// subnormals or ±0, and NaN stays NaN (quiet, sign and top payload bits kept).
public func float16Bits(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let magnitude = bits & 0x7FFF_FFFF

    if magnitude >= 0x7F80_0000 {
        if magnitude == 0x7F80_0000 { return sign | 0x7C00 }
        // The quiet bit keeps a payload that lived only in the dropped low bits from turning into infinity.
        return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x03FF)
    }
    // 65520 is halfway between 65504 (largest finite, odd significand) and 65536, so it and
    // everything above rounds to infinity.
    if magnitude >= 0x477F_F000 { return sign | 0x7C00 }

    if magnitude < 0x3880_0000 {
        // Below 2^-14 the result is subnormal: count units of 2^-24 with the implicit bit restored.
        // At 2^-25 and below it rounds to zero (exactly 2^-25 is a tie that goes to even zero).
        let exponent = Int(magnitude >> 23)
        if exponent < 102 { return sign }
        let significand = (magnitude & 0x007F_FFFF) | 0x0080_0000
        let shift = UInt32(126 - exponent)              // 14...24
        var q = significand >> shift
        let rest = significand & ((1 << shift) - 1)
        let half = UInt32(1) << (shift - 1)
        if rest > half || (rest == half && q & 1 == 1) { q += 1 }
        // A carry out of the subnormal range lands on the smallest normal, whose pattern is q itself.
        return sign | UInt16(truncatingIfNeeded: q)
    }

    // Rebias the exponent (127 → 15) and drop 13 significand bits; a rounding carry may
    // ripple into the exponent, which is the correct next binade.
    var h = (magnitude >> 13) &- (112 << 10)
    let rest = magnitude & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) { h += 1 }
    return sign | UInt16(truncatingIfNeeded: h)
}

/// The exact Float value of a binary16 pattern (every binary16 is representable in Float).
public func float(fromFloat16Bits h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let significand = UInt32(h & 0x03FF)
    switch exponent {
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | (significand << 13))
    case 0:
        // Subnormal or zero: significand × 2^-24, exact since both factors are exact in Float.
        let magnitude = Float(significand) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    default:
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (significand << 13))
    }
}

/// Nearest bfloat16 to `f`, ties to even; NaN stays a quiet NaN with its sign.
/// bfloat16 shares Float's exponent range, so subnormals and overflow need no special path.
public func bfloat16Bits(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        // Forcing the quiet bit keeps a low-payload NaN from truncating to infinity.
        return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
    }
    let roundingBias = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

/// The exact Float value of a bfloat16 pattern.
public func float(fromBFloat16Bits b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}
