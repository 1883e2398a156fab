// Reductions over contiguous Float runs with eight independent SIMD lanes. Swift will not
// reorder a scalar `s += a[i]` loop (float addition is not associative), so without explicit
// lanes these loops would run one element at a time; the lanes also shorten each partial sum,
// which keeps the rounding error of long rows low.

enum VectorMath {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Σ (p[i] − mean)².
    @inline(__always)
    static func sumSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        while i + 8 <= n {
            let d = load(p, i) - m
            acc += d * d
            i += 8
        }
        var s = acc.sum()
        while i < n {
            let d = p[i] - mean
            s += d * d
            i += 1
        }
        return s
    }

    /// Σ a[i]·b[i].
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc += load(a, i) * load(b, i)
            i += 8
        }
        var s = acc.sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// Σ a[i]·(b[i] − mean).
    @inline(__always)
    static func dotCentered(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        while i + 8 <= n {
            acc += load(a, i) * (load(b, i) - m)
            i += 8
        }
        var s = acc.sum()
        while i < n {
            s += a[i] * (b[i] - mean)
            i += 1
        }
        return s
    }
}
