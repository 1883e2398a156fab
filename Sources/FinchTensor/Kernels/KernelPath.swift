import CFinchKernels

/// The code path Finch's own kernels take: the portable Swift and C code (`generic`), the AVX2+FMA
/// kernels (`avx2`: exponentials, Winograd F(2×2) and F(4×4) transforms, 3×3 stride-2 max pooling,
/// few-channel and small-plane pointwise convolutions, softmax),
/// or the AVX-512 kernels (`avx512`: exponentials, depthwise and few-channel convolutions, Winograd
/// F(2×2) and F(4×4) transforms, small-plane pointwise convolutions, max pooling, softmax, BatchNorm).
/// Each path runs on every CPU that runs the next one.
///
/// Chosen once when the library loads: the CPU's best, or `FINCH_KERNELS=generic|avx2|avx512`
/// clamped to the best (a note on stderr says so; `requested` keeps what was asked). An unknown
/// value stops the process before it does anything, naming the variable and the values it takes.
/// Every dispatch point reads `active`, so one machine runs the code that CPUs without AVX-512 or
/// AVX2 run. OpenBLAS keeps its own kernels.
public enum KernelPath: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case generic = 0, avx2 = 1, avx512 = 2

    /// The FINCH_KERNELS value that selects this path.
    public var name: String { String(cString: finch_kernels_name(Int32(rawValue))) }
    public var description: String { name }

    /// The path a FINCH_KERNELS value names, nil for any other value.
    public init?(name: String) {
        let path = finch_kernels_parse(name)
        guard path >= 0 else { return nil }
        self.init(rawValue: Int(path))
    }

    public static func < (a: KernelPath, b: KernelPath) -> Bool { a.rawValue < b.rawValue }

    /// The path the kernels take now.
    public static var active: KernelPath { KernelPath(rawValue: Int(finch_kernels_path())) ?? .generic }

    /// The best path this CPU runs.
    public static var best: KernelPath { KernelPath(rawValue: Int(finch_kernels_best())) ?? .generic }

    /// Every path this CPU runs, lowest first.
    public static var supported: [KernelPath] { allCases.filter { $0 <= best } }

    /// What FINCH_KERNELS asked for when the library loaded (nil when unset), before clamping.
    public static var requested: KernelPath? { KernelPath(rawValue: Int(finch_kernels_requested())) }

    /// Whether FINCH_KERNELS asked for more than this CPU has, so `active` is lower than asked.
    public static var clamped: Bool { requested.map { $0 > best } ?? false }

    /// How `finch bench` and logs name the kernels in use: `avx2`, or `avx2 (FINCH_KERNELS=avx512
    /// clamped)` when the variable asked for more than the CPU has.
    public static var summary: String {
        guard clamped, let requested else { return active.name }
        return "\(active.name) (FINCH_KERNELS=\(requested.name) clamped)"
    }

    /// Runs `body` on `path` and restores the path before, for tests that run one model on every
    /// path in one process. Not for use while another thread runs kernels: the path is global.
    public static func with<T>(_ path: KernelPath, _ body: () throws -> T) rethrows -> T {
        let saved = active
        ensure(path <= best, "KernelPath.with(\(path)): this CPU's best path is \(best)")
        _ = finch_kernels_use(path.name)
        defer { _ = finch_kernels_use(saved.name) }
        return try body()
    }
}
