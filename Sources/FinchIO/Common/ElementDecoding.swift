import FinchTensor
// Turning a tensor's little-endian bytes into Float or Int64 elements.
//
// Tensor data sits at whatever offset the writer chose (the header length need not be a
// multiple of 8 in files from other writers), so every load is an unaligned one.

extension UnsafeRawBufferPointer {
    @inline(__always)
    fileprivate func element<T: FixedWidthInteger>(_ index: Int, as: T.Type) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
    }
}

/// Writes `count` elements of `dtype` from `bytes` into `out` as Float: widening F16/BF16/F8
/// exactly, rounding F64 and wide integers to nearest, BOOL as 0/1.
func decodeFloats(_ bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count: Int,
                  into out: UnsafeMutablePointer<Float>) {
    ensure(bytes.count == count * dtype.size, "decodeFloats: byte count checked by the header")
    switch dtype {
    case .f32:
        #if _endian(little)
        if count > 0 { UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        #else
        for i in 0..<count { out[i] = Float(bitPattern: bytes.element(i, as: UInt32.self)) }
        #endif
    case .f64:
        for i in 0..<count { out[i] = Float(Double(bitPattern: bytes.element(i, as: UInt64.self))) }
    case .f16:
        for i in 0..<count { out[i] = float(fromFloat16Bits: bytes.element(i, as: UInt16.self)) }
    case .bf16:
        for i in 0..<count { out[i] = float(fromBFloat16Bits: bytes.element(i, as: UInt16.self)) }
    case .f8e4m3:
        for i in 0..<count { out[i] = float(fromFloat8E4M3Bits: bytes[i]) }
    case .f8e5m2:
        for i in 0..<count { out[i] = float(fromFloat8E5M2Bits: bytes[i]) }
    case .i64:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: Int64.self)) }
    case .i32:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: Int32.self)) }
    case .i16:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: Int16.self)) }
    case .i8:
        for i in 0..<count { out[i] = Float(Int8(bitPattern: bytes[i])) }
    case .u64:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: UInt64.self)) }
    case .u32:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: UInt32.self)) }
    case .u16:
        for i in 0..<count { out[i] = Float(bytes.element(i, as: UInt16.self)) }
    case .u8:
        for i in 0..<count { out[i] = Float(bytes[i]) }
    case .bool:
        // Any non-zero byte counts as true, as numpy and PyTorch read it.
        for i in 0..<count { out[i] = bytes[i] == 0 ? 0 : 1 }
    }
}

/// The elements of an integer (or BOOL) tensor as Int64, or the index of the first U64 element
/// that does not fit. Floating dtypes are the caller's error to report.
func decodeIntegers(_ bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count: Int) -> Result<[Int64], IntegerOverflow> {
    ensure(dtype.isInteger && bytes.count == count * dtype.size, "decodeIntegers: checked by the caller")
    var values = [Int64](repeating: 0, count: count)
    switch dtype {
    case .i64: for i in 0..<count { values[i] = bytes.element(i, as: Int64.self) }
    case .i32: for i in 0..<count { values[i] = Int64(bytes.element(i, as: Int32.self)) }
    case .i16: for i in 0..<count { values[i] = Int64(bytes.element(i, as: Int16.self)) }
    case .i8: for i in 0..<count { values[i] = Int64(Int8(bitPattern: bytes[i])) }
    case .u32: for i in 0..<count { values[i] = Int64(bytes.element(i, as: UInt32.self)) }
    case .u16: for i in 0..<count { values[i] = Int64(bytes.element(i, as: UInt16.self)) }
    case .u8: for i in 0..<count { values[i] = Int64(bytes[i]) }
    case .bool: for i in 0..<count { values[i] = bytes[i] == 0 ? 0 : 1 }
    case .u64:
        for i in 0..<count {
            let v = bytes.element(i, as: UInt64.self)
            guard let fitted = Int64(exactly: v) else { return .failure(IntegerOverflow(index: i, value: v)) }
            values[i] = fitted
        }
    case .f64, .f32, .f16, .bf16, .f8e4m3, .f8e5m2:
        ensureFailed("decodeIntegers: floating dtype \(dtype)")
    }
    return .success(values)
}

struct IntegerOverflow: Error {
    let index: Int
    let value: UInt64
}
