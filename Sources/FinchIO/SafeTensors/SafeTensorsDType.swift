/// Element types a safetensors header may name, spelled as the format spells them.
///
/// Newer spec types (sub-byte floats, E8M0, complex) are deliberately absent: a file using
/// them is reported as an unknown dtype rather than read with guessed semantics.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    /// float8_e4m3fn: no infinities, one NaN pattern per sign (as in PyTorch).
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16, .f8e4m3, .f8e5m2: return true
        default: return false
        }
    }

    /// Integer types, with BOOL counted as one since it is stored as a 0/1 byte.
    public var isInteger: Bool { !isFloatingPoint }
}
