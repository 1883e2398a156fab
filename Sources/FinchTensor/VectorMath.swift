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

// MARK: Exponential over SIMD lanes

extension VectorMath {
    typealias Lanes = SIMD16<Float>

    /// eˣ on sixteen lanes, within 2 ulp of `expf` over the whole Float range (Cody–Waite
    /// reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, then Cephes' degree-7 polynomial for eʳ).
    /// glibc's `expf` is a call per element that the compiler cannot vectorise: a third of a
    /// MobileViT forward went to it (SiLU, softmax) before this.
    @inline(__always)
    static func exp(_ x: Lanes) -> Lanes {
        let hi: Float = 88.72283, lo: Float = -103.97208
        // Masks rather than `clamped`, which is not specialised for SIMD16 and costs a call per vector.
        var xc = x
        xc.replace(with: hi, where: x .> hi)
        xc.replace(with: lo, where: x .< lo)
        // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
        let magic = Lanes(repeating: 12_582_912)
        let t = xc * 1.44269504088896341 + magic
        let n = t - magic
        let r = (xc - n * 0.693359375) - n * -2.12194440e-4
        var p = Lanes(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        // 2ⁿ in two halves, so that n from −150 to 128 needs no special exponent handling.
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
        let n1 = ni &>> 1, n2 = ni &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: Lanes.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: Lanes.self)
        var e = p * s1 * s2
        e.replace(with: .infinity, where: x .> hi)
        e.replace(with: 0, where: x .< lo)
        e.replace(with: x, where: x .!= x)
        return e
    }

    /// Applies a lane-wise function over `count` floats (src and dst may be the same buffer).
    /// The tail goes through the same function on a zero-padded vector, so every element gets
    /// the same arithmetic wherever it sits: results do not depend on how work is split.
    @inline(__always)
    static func forEachLanes(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int,
                             _ f: (Lanes) -> Lanes) {
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(src + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: f(v), as: Lanes.self)
            i += 16
        }
        if i < count {
            var v = Lanes(repeating: 0)
            for k in 0..<(count - i) { v[k] = src[i + k] }
            let y = f(v)
            for k in 0..<(count - i) { dst[i + k] = y[k] }
        }
    }

    /// The two-input form of `forEachLanes`: dst[i] = f(a[i], b[i]).
    @inline(__always)
    static func forEachLanes(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                             _ count: Int, _ f: (Lanes, Lanes) -> Lanes) {
        var i = 0
        while i + 16 <= count {
            let u = UnsafeRawPointer(a + i).loadUnaligned(as: Lanes.self)
            let v = UnsafeRawPointer(b + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: f(u, v), as: Lanes.self)
            i += 16
        }
        if i < count {
            var u = Lanes(repeating: 0), v = Lanes(repeating: 0)
            for k in 0..<(count - i) {
                u[k] = a[i + k]
                v[k] = b[i + k]
            }
            let y = f(u, v)
            for k in 0..<(count - i) { dst[i + k] = y[k] }
        }
    }
}
