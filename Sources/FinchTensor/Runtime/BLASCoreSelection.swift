#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// OpenBLAS picks its kernels from the CPU model number. Builds older than the CPU (Debian 12
/// ships 0.3.21) do not know recent Xeons (e.g. family 6 model 207) and fall back to the
/// SSE3 "Prescott" kernels, several times slower than the AVX-512 ones the CPU runs. When that
/// happened and the user has not chosen a core, re-run OpenBLAS's dynamic selection with the
/// core the CPU's features support. Symbols are looked up at run time, so builds without
/// dynamic kernel selection are left alone. `FINCH_BLAS_CORE=keep` disables this.
enum BLASCoreSelection {
    /// What OpenBLAS reports after `apply()`, for benchmarks and logs.
    nonisolated(unsafe) static var coreName: String = "unknown"

    static func apply() {
        typealias NameFn = @convention(c) () -> UnsafeMutablePointer<CChar>?
        typealias VoidFn = @convention(c) () -> Void
        let handle = dlopen(nil, RTLD_NOW)
        func symbol<T>(_ name: String, as: T.Type) -> T? {
            guard let p = dlsym(handle, name) else { return nil }
            return unsafeBitCast(p, to: T.self)
        }
        guard let getName = symbol("openblas_get_corename", as: NameFn.self) else { return }
        func current() -> String { getName().map { String(cString: $0) } ?? "unknown" }
        coreName = current()
        guard getenv("OPENBLAS_CORETYPE") == nil, ProcessInfoLite.environment("FINCH_BLAS_CORE") != "keep",
              coreName.lowercased() == "prescott",
              let quit = symbol("gotoblas_dynamic_quit", as: VoidFn.self),
              let initialise = symbol("gotoblas_dynamic_init", as: VoidFn.self) else { return }
        let flags = cpuFlags()
        let target: String
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { target = "SkylakeX" }
        else if flags.contains("avx2") && flags.contains("fma") { target = "Haswell" }
        else { return }
        setenv("OPENBLAS_CORETYPE", target, 1)
        quit()
        initialise()
        coreName = current()
    }

    static func cpuFlags() -> Set<String> {
        guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("flags") {
                let list = s.split(separator: ":", maxSplits: 1).last ?? ""
                return Set(list.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
            }
        }
        return []
    }
}
