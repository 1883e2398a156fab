// Decoding of the two 8-bit float formats PyTorch saves (read-only: Finch never writes them).

/// float8_e4m3fn: bias 7, no infinities; S.1111.111 is NaN, so the exponent field 15 still holds finite values up to 448.
public func float(fromFloat8E4M3Bits b: UInt8) -> Float {
    let negative = b & 0x80 != 0
    let exponent = Int((b >> 3) & 0x0F)
    let significand = Float(b & 0x07)
    let magnitude: Float
    if exponent == 0x0F && b & 0x07 == 0x07 {
        magnitude = .nan
    } else if exponent == 0 {
        magnitude = significand * 0x1p-9
    } else {
        magnitude = (1 + significand / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
    return negative ? -magnitude : magnitude
}

/// float8_e5m2 is the top byte of an IEEE binary16, infinities and NaNs included.
public func float(fromFloat8E5M2Bits b: UInt8) -> Float {
    float(fromFloat16Bits: UInt16(b) << 8)
}
