// See include/FinchKernels.h. The exponential is Cody–Waite range reduction x = n·ln 2 + r,
// |r| ≤ ln 2 / 2, Cephes' degree-7 polynomial for eʳ, and 2ⁿ built in two halves (so n from
// −150 to 128 needs no special case) or, on AVX-512, by scalef; within 2 ulp of exp over the Float range.

#include "FinchKernels.h"
#include "KernelSupport.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define EXP_HI 88.72283f
#define EXP_LO -103.97208f

enum op { OP_EXP, OP_SILU, OP_SIGMOID, OP_SILU_BACKWARD };

// ---------------------------------------------------------------- generic (any x86-64 or other CPU)

static float exp_scalar(float x) {
    if (x != x) return x;
    if (x > EXP_HI) return INFINITY;
    if (x < EXP_LO) return 0.0f;
    const float magic = 12582912.0f;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t ni, mb;
    memcpy(&ni, &t, 4);
    memcpy(&mb, &magic, 4);
    ni -= mb;
    int32_t n1 = ni >> 1, n2 = ni - n1;
    int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}

static void run_generic(enum op op, const float *a, const float *b, float *dst, size_t n, float shift) {
    for (size_t i = 0; i < n; i++) {
        float x = a[i];
        switch (op) {
        case OP_EXP: dst[i] = exp_scalar(x - shift); break;
        case OP_SILU: dst[i] = x / (1.0f + exp_scalar(-x)); break;
        case OP_SIGMOID: dst[i] = 1.0f / (1.0f + exp_scalar(-x)); break;
        case OP_SILU_BACKWARD: {
            float v = b[i], s = 1.0f / (1.0f + exp_scalar(-v));
            dst[i] = x * s * (1.0f + v * (1.0f - s));
            break;
        }
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// ---------------------------------------------------------------- AVX-512: sixteen lanes

// 2ⁿ is applied by scalef, which overflows to ∞ and underflows through the subnormals to 0 as IEEE
// arithmetic does, so the two-halves scaling and the three fix-up blends of the AVX2 form are not
// needed (exp16 went from about 20 to 13 cycles per vector). The clamp only keeps r finite for ±∞;
// x is min's and max's second operand so that a NaN passes through.
__attribute__((target("avx512f")))
static inline __m512 exp16(__m512 x) {
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-110.0f), _mm512_min_ps(_mm512_set1_ps(100.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// 1 / (1 + e⁻ˣ) by the 14-bit reciprocal estimate and one Newton step (within 2 ulp of the
// quotient): a 512-bit division issues once per 16 cycles and was half of BatchNorm+SiLU's time.
// Where e⁻ˣ overflows the step would compute ∞·0; those lanes get 0, as the division gives.
__attribute__((target("avx512f")))
static inline __m512 logistic16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 d = _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)));
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, one), r);
    __mmask16 overflow = _mm512_cmp_ps_mask(d, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(overflow, r, _mm512_setzero_ps());
}

__attribute__((target("avx512f")))
static inline __m512 apply16(enum op op, __m512 a, __m512 b, __m512 shift) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (op) {
    case OP_EXP: return exp16(_mm512_sub_ps(a, shift));
    case OP_SILU: return _mm512_mul_ps(a, logistic16(a));
    case OP_SIGMOID: return logistic16(a);
    case OP_SILU_BACKWARD: {
        __m512 s = logistic16(b);
        __m512 inner = _mm512_add_ps(one, _mm512_mul_ps(b, _mm512_sub_ps(one, s)));
        return _mm512_mul_ps(_mm512_mul_ps(a, s), inner);
    }
    }
    return a;
}

__attribute__((target("avx512f")))
static void run_avx512(enum op op, const float *a, const float *b, float *dst, size_t n, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 va = _mm512_loadu_ps(a + i), vb = b ? _mm512_loadu_ps(b + i) : va;
        _mm512_storeu_ps(dst + i, apply16(op, va, vb, sh));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 va = _mm512_maskz_loadu_ps(m, a + i), vb = b ? _mm512_maskz_loadu_ps(m, b + i) : va;
        _mm512_mask_storeu_ps(dst + i, m, apply16(op, va, vb, sh));
    }
}

// ---------------------------------------------------------------- AVX2 + FMA: eight lanes

__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(EXP_LO), magic = _mm256_set1_ps(12582912.0f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma")))
static inline __m256 apply8(enum op op, __m256 a, __m256 b, __m256 shift) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (op) {
    case OP_EXP: return exp8(_mm256_sub_ps(a, shift));
    case OP_SILU: return _mm256_div_ps(a, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), a))));
    case OP_SIGMOID: return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), a))));
    case OP_SILU_BACKWARD: {
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), b))));
        __m256 inner = _mm256_add_ps(one, _mm256_mul_ps(b, _mm256_sub_ps(one, s)));
        return _mm256_mul_ps(_mm256_mul_ps(a, s), inner);
    }
    }
    return a;
}

__attribute__((target("avx2,fma")))
static void run_avx2(enum op op, const float *a, const float *b, float *dst, size_t n, float shift) {
    const __m256 sh = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i), vb = b ? _mm256_loadu_ps(b + i) : va;
        _mm256_storeu_ps(dst + i, apply8(op, va, vb, sh));
    }
    if (i < n) {
        float ta[8] = {0}, tb[8] = {0}, td[8];
        memcpy(ta, a + i, (n - i) * sizeof(float));
        if (b) memcpy(tb, b + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(td, apply8(op, _mm256_loadu_ps(ta), b ? _mm256_loadu_ps(tb) : _mm256_loadu_ps(ta), sh));
        memcpy(dst + i, td, (n - i) * sizeof(float));
    }
}

typedef void (*runner)(enum op, const float *, const float *, float *, size_t, float);

static runner selected = run_generic;

// Chosen once at load time, before any thread can call in.
__attribute__((constructor))
static void select_runner(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) selected = run_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) selected = run_avx2;
}

static runner chosen(void) { return selected; }

// ---------------------------------------------------------------- depthwise convolution, 16 channels per vector

long finch_depthwise_tiles16_scratch(const long *g) {
    long kh = g[4], kw = g[5], sh = g[6], sw = g[7], dh = g[10], dw = g[11], ho = g[12], wo = g[13];
    long hp = (ho - 1) * sh + (kh - 1) * dh + 1, wp = (wo - 1) * sw + (kw - 1) * dw + 1;
    return 16 * (hp * wp + kh * kw + wo);
}

__attribute__((target("avx512f")))
static void depthwise16(const float *x, const float *weight, const float *bias, float *out, const long *g,
                        long unit_begin, long unit_end, float *scratch) {
    const long n = g[0], c = g[1], h = g[2], w = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
    const long pt = g[8], pl = g[9], dh = g[10], dw = g[11], ho = g[12], wo = g[13];
    const long hp = (ho - 1) * sh + (kh - 1) * dh + 1, wp = (wo - 1) * sw + (kw - 1) * dw + 1, khw = kh * kw;
    float *tile = scratch, *wt = tile + 16 * hp * wp, *row = wt + 16 * khw;
    long rows = h < hp - pt ? h : hp - pt, cols = w < wp - pl ? w : wp - pl;
    if (rows < 0) rows = 0;
    if (cols < 0) cols = 0;
    long loaded = -1;
    __m512 b = _mm512_setzero_ps();
    for (long u = unit_begin; u < unit_end; u++) {
        long block = u / n, s = u % n, c0 = block * 16;
        long lanes = c - c0 < 16 ? c - c0 : 16;
        memset(tile, 0, sizeof(float) * 16 * hp * wp);
        // One gather per pixel across the block's channel planes: a store per channel into the
        // interleaved tile compiles to scatters, which took a quarter of this kernel's time.
        const __m512i planes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                  _mm512_set1_epi32((int)(h * w)));
        const __mmask16 present = first_lanes(lanes);
        const float *first = x + (s * c + c0) * h * w;
        for (long ih = 0; ih < rows; ih++) {
            float *dst = tile + ((ih + pt) * wp + pl) * 16;
            for (long iw = 0; iw < cols; iw++)
                _mm512_store_ps(dst + iw * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), present, planes,
                                                                        first + ih * w + iw, 4));
        }
        if (block != loaded) {
            memset(wt, 0, sizeof(float) * 16 * khw);
            float bb[16] = {0};
            for (long k = 0; k < lanes; k++) {
                for (long t = 0; t < khw; t++) wt[t * 16 + k] = weight[(c0 + k) * khw + t];
                if (bias) bb[k] = bias[c0 + k];
            }
            b = _mm512_loadu_ps(bb);
            loaded = block;
        }
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                __m512 acc = b;
                for (long i = 0; i < kh; i++) {
                    const float *r = tile + ((oh * sh + i * dh) * wp + ow * sw) * 16;
                    const float *wr = wt + i * kw * 16;
                    for (long j = 0; j < kw; j++)
                        acc = _mm512_fmadd_ps(_mm512_load_ps(wr + j * 16), _mm512_load_ps(r + j * dw * 16), acc);
                }
                _mm512_store_ps(row + ow * 16, acc);
            }
            for (long k = 0; k < lanes; k++) {
                float *dst = out + (s * c + c0 + k) * ho * wo + oh * wo;
                for (long ow = 0; ow < wo; ow++) dst[ow] = row[ow * 16 + k];
            }
        }
    }
}

int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch) {
    if (selected != run_avx512) return 0;
    depthwise16(x, weight, bias, out, geometry, unit_begin, unit_end, scratch);
    return 1;
}

// ---------------------------------------------------------------- depthwise convolution backward, packed rows

// a[o] += v[o]·s[o] for three taps at once: the weight-gradient partial sums of one kernel row.
__attribute__((target("avx512f")))
static inline void multiply_accumulate3(float *a0, float *a1, float *a2, const float *v, const float *s0,
                                        const float *s1, const float *s2, long n) {
    for (long o = 0; o < n; o += 16) {
        __mmask16 k = first_lanes(n - o);
        __m512 d = _mm512_maskz_loadu_ps(k, v + o);
        _mm512_mask_storeu_ps(a0 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s0 + o), _mm512_maskz_loadu_ps(k, a0 + o)));
        _mm512_mask_storeu_ps(a1 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s1 + o), _mm512_maskz_loadu_ps(k, a1 + o)));
        _mm512_mask_storeu_ps(a2 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s2 + o), _mm512_maskz_loadu_ps(k, a2 + o)));
    }
}

__attribute__((target("avx512f")))
static inline void multiply_accumulate(float *a, const float *v, const float *s, long n) {
    for (long o = 0; o < n; o += 16) {
        __mmask16 k = first_lanes(n - o);
        _mm512_mask_storeu_ps(a + o, k, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, v + o), _mm512_maskz_loadu_ps(k, s + o),
                                                        _mm512_maskz_loadu_ps(k, a + o)));
    }
}

// Three taps of one packed row, (w0·s0 + w1·s1) + w2·s2, in the order the Swift rows kernel adds them.
__attribute__((target("avx512f")))
static inline __m512 masked_three_taps(const float *s0, const float *s1, const float *s2, __mmask16 k0, __mmask16 k1,
                                       __mmask16 k2, __m512 w0, __m512 w1, __m512 w2) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(w0, _mm512_maskz_loadu_ps(k0, s0)), _mm512_mul_ps(w1, _mm512_maskz_loadu_ps(k1, s1))),
                         _mm512_mul_ps(w2, _mm512_maskz_loadu_ps(k2, s2)));
}

__attribute__((target("avx512f"), always_inline))
static inline __m512 three_taps(const float *s0, const float *s1, const float *s2, __m512 w0, __m512 w1, __m512 w2,
                                __mmask16 k) {
    return masked_three_taps(s0, s1, s2, k, k, k, w0, w1, w2);
}

// t[x] += w0·q0[x] + w1·q1[x] + w2·q2[x]: one kernel row's three taps per pass over the row.
__attribute__((target("avx512f")))
static inline void scaled_add3(float *t, const float *q0, const float *q1, const float *q2, float w0, float w1, float w2,
                               long n) {
    const __m512 v0 = _mm512_set1_ps(w0), v1 = _mm512_set1_ps(w1), v2 = _mm512_set1_ps(w2);
    for (long x = 0; x < n; x += 16) {
        __mmask16 k = first_lanes(n - x);
        _mm512_mask_storeu_ps(t + x, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, t + x), three_taps(q0 + x, q1 + x, q2 + x, v0, v1, v2, k)));
    }
}

__attribute__((target("avx512f")))
static inline void scaled_add(float *t, const float *q, float w, long n) {
    const __m512 v = _mm512_set1_ps(w);
    for (long x = 0; x < n; x += 16) {
        __mmask16 k = first_lanes(n - x);
        _mm512_mask_storeu_ps(t + x, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, t + x), _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, q + x))));
    }
}

__attribute__((target("avx512f")))
static void depthwise_backward_plane16(const float *dy, const float *packed, const float *weight, float *acc,
                                       float *dpacked, float *dy_pad, const long *g, const long *taps) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], dw = g[4], pt = g[5], h = g[6], ho = g[7], wo = g[8];
    const long prow = g[9], wpad = g[10], edge = g[11], gather = g[12];
    for (long oh = 0; oh < ho; oh++) {
        const float *d = dy + oh * wo;
        if (dpacked && gather) memcpy(dy_pad + edge, d, sizeof(float) * (size_t)wo);
        for (long i = 0; i < kh; i++) {
            const long ih = oh * sh - pt + i * dh;
            if (ih < 0 || ih >= h) continue;
            const long row = ih * prow;
            if (acc) {
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    float *a0 = acc + (i * kw + j) * wo;
                    multiply_accumulate3(a0, a0 + wo, a0 + 2 * wo, d, packed + row + taps[j], packed + row + taps[j + 1],
                                         packed + row + taps[j + 2], wo);
                }
                for (; j < kw; j++) multiply_accumulate(acc + (i * kw + j) * wo, d, packed + row + taps[j], wo);
            }
            if (!dpacked) continue;
            float *t = dpacked + row;
            const float *wi = weight + i * kw;
            if (gather) {
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    const float *q0 = dy_pad + edge - j * dw;
                    scaled_add3(t, q0, q0 - dw, q0 - 2 * dw, wi[j], wi[j + 1], wi[j + 2], wpad);
                }
                for (; j < kw; j++) scaled_add(t, dy_pad + edge - j * dw, wi[j], wpad);
            } else {
                for (long j = 0; j < kw; j++) scaled_add(t + taps[j], d, wi[j], wo);
            }
        }
    }
}

__attribute__((target("avx512f")))
static void depthwise_forward_plane16(const float *packed, const float *weight, float bias, float *out, const long *g,
                                      const long *taps) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], pt = g[5], h = g[6], ho = g[7], wo = g[8], prow = g[9];
    const __m512 b = _mm512_set1_ps(bias);
    for (long oh = 0; oh < ho; oh++) {
        float *o = out + oh * wo;
        const long ih0 = oh * sh - pt;
        if (kh == 3 && kw == 3 && ih0 >= 0 && ih0 + 2 * dh < h) {
            // Interior rows of a 3×3 kernel: all nine taps in one pass, one store per output.
            const float *r0 = packed + ih0 * prow, *r1 = r0 + dh * prow, *r2 = r1 + dh * prow;
            const __m512 w0 = _mm512_set1_ps(weight[0]), w1 = _mm512_set1_ps(weight[1]), w2 = _mm512_set1_ps(weight[2]);
            const __m512 w3 = _mm512_set1_ps(weight[3]), w4 = _mm512_set1_ps(weight[4]), w5 = _mm512_set1_ps(weight[5]);
            const __m512 w6 = _mm512_set1_ps(weight[6]), w7 = _mm512_set1_ps(weight[7]), w8 = _mm512_set1_ps(weight[8]);
            for (long x = 0; x < wo; x += 16) {
                __mmask16 k = first_lanes(wo - x);
                __m512 top = three_taps(r0 + taps[0] + x, r0 + taps[1] + x, r0 + taps[2] + x, w0, w1, w2, k);
                __m512 mid = three_taps(r1 + taps[0] + x, r1 + taps[1] + x, r1 + taps[2] + x, w3, w4, w5, k);
                __m512 bot = three_taps(r2 + taps[0] + x, r2 + taps[1] + x, r2 + taps[2] + x, w6, w7, w8, k);
                _mm512_mask_storeu_ps(o + x, k, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b, top), mid), bot));
            }
            continue;
        }
        for (long x = 0; x < wo; x++) o[x] = bias;
        for (long i = 0; i < kh; i++) {
            const long ih = ih0 + i * dh;
            if (ih < 0 || ih >= h) continue;
            const float *row = packed + ih * prow, *wi = weight + i * kw;
            long j = 0;
            for (; j + 3 <= kw; j += 3) scaled_add3(o, row + taps[j], row + taps[j + 1], row + taps[j + 2], wi[j], wi[j + 1], wi[j + 2], wo);
            for (; j < kw; j++) scaled_add(o, row + taps[j], wi[j], wo);
        }
    }
}

// Lanes (under k) of input columns col … col + 15 that lie in a row of w, and where to load them
// from: zero outside the row, exactly as a packed row's padding. A masked-off lane is never read,
// but the address must stay inside the row.
__attribute__((always_inline))
static inline __mmask16 column_mask(long col, long w, __mmask16 k, long *start) {
    __mmask16 m = k & span_mask(col, w, 16);
    *start = m ? col : 0;
    return m;
}

// depthwise_forward_plane16 for column stride 1 straight from the input plane: no packed copy (its
// row copies were as costly as the convolution on MobileViT-XXS). Every output gets the same
// operations in the same order as from the packed rows, so the results are identical.
__attribute__((target("avx512f")))
static void depthwise_forward_direct16(const float *plane, const float *weight, float bias, float *out, const long *g) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], dw = g[4], pt = g[5], h = g[6], ho = g[7], wo = g[8];
    const long w = g[13], pl = g[14];
    const __m512 b = _mm512_set1_ps(bias);
    const int nine = kh == 3 && kw == 3;
    if (nine) {
        // Interior rows of a 3×3 kernel, column block by column block: a block's three load masks
        // (zero lanes left and right of the row) are built once for all its rows.
        const __m512 w0 = _mm512_set1_ps(weight[0]), w1 = _mm512_set1_ps(weight[1]), w2 = _mm512_set1_ps(weight[2]);
        const __m512 w3 = _mm512_set1_ps(weight[3]), w4 = _mm512_set1_ps(weight[4]), w5 = _mm512_set1_ps(weight[5]);
        const __m512 w6 = _mm512_set1_ps(weight[6]), w7 = _mm512_set1_ps(weight[7]), w8 = _mm512_set1_ps(weight[8]);
        for (long x = 0; x < wo; x += 16) {
            const __mmask16 k = first_lanes(wo - x);
            long a0, a1, a2;
            const __mmask16 m0 = column_mask(x - pl, w, k, &a0), m1 = column_mask(x - pl + dw, w, k, &a1);
            const __mmask16 m2 = column_mask(x - pl + 2 * dw, w, k, &a2);
            for (long oh = 0; oh < ho; oh++) {
                const long ih0 = oh * sh - pt;
                if (ih0 < 0 || ih0 + 2 * dh >= h) continue;
                const float *r0 = plane + ih0 * w, *r1 = r0 + dh * w, *r2 = r1 + dh * w;
                __m512 top = masked_three_taps(r0 + a0, r0 + a1, r0 + a2, m0, m1, m2, w0, w1, w2);
                __m512 mid = masked_three_taps(r1 + a0, r1 + a1, r1 + a2, m0, m1, m2, w3, w4, w5);
                __m512 bot = masked_three_taps(r2 + a0, r2 + a1, r2 + a2, m0, m1, m2, w6, w7, w8);
                _mm512_mask_storeu_ps(out + oh * wo + x, k, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b, top), mid), bot));
            }
        }
    }
    // Every other row (all of them for other kernels): bias, then each kernel row's taps in threes.
    for (long oh = 0; oh < ho; oh++) {
        const long ih0 = oh * sh - pt;
        if (nine && ih0 >= 0 && ih0 + 2 * dh < h) continue;
        for (long x = 0; x < wo; x += 16) {
            const __mmask16 k = first_lanes(wo - x);
            __m512 acc = b;
            for (long i = 0; i < kh; i++) {
                const long ih = ih0 + i * dh;
                if (ih < 0 || ih >= h) continue;
                const float *row = plane + ih * w, *wi = weight + i * kw;
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    const long c = x - pl + j * dw;
                    long a0, a1, a2;
                    __mmask16 m0 = column_mask(c, w, k, &a0), m1 = column_mask(c + dw, w, k, &a1);
                    __mmask16 m2 = column_mask(c + 2 * dw, w, k, &a2);
                    acc = _mm512_add_ps(acc, masked_three_taps(row + a0, row + a1, row + a2, m0, m1, m2, _mm512_set1_ps(wi[j]),
                                                               _mm512_set1_ps(wi[j + 1]), _mm512_set1_ps(wi[j + 2])));
                }
                for (; j < kw; j++) {
                    long a;
                    __mmask16 m = column_mask(x - pl + j * dw, w, k, &a);
                    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(wi[j]), _mm512_maskz_loadu_ps(m, row + a)));
                }
            }
            _mm512_mask_storeu_ps(out + oh * wo + x, k, acc);
        }
    }
}

// ---------------------------------------------------------------- 3×3 stride-2 max pooling (no indices)

// Input columns first + 2l + {0, 1} for sixteen lanes l from 32 consecutive floats, −∞ outside the row.
__attribute__((target("avx512f"), always_inline))
static inline void pool_columns(const float *row, long first, long w, __m512 *even, __m512 *odd) {
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    __mmask16 m0 = span_mask(first, w, 16), m1 = span_mask(first + 16, w, 16);
    __m512 lo = _mm512_mask_loadu_ps(minus_inf, m0, m0 ? row + first : row);
    __m512 hi = _mm512_mask_loadu_ps(minus_inf, m1, m1 ? row + first + 16 : row);
    *even = _mm512_permutex2var_ps(lo, ie, hi);
    *odd = _mm512_permutex2var_ps(lo, io, hi);
}

// PyTorch's scan step: move on a greater value or a NaN (a NaN already held stays).
__attribute__((target("avx512f"), always_inline))
static inline __m512 pool_take(__m512 best, __m512 v) {
    __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(take, best, v);
}

// The same step for the argmax: the index of the value `pool_take` kept.
__attribute__((target("avx512f"), always_inline))
static inline void pool_take_at(__m512 *best, __m512i *at, __m512 v, __m512i v_at) {
    __mmask16 take = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    *best = _mm512_mask_blend_ps(take, *best, v);
    *at = _mm512_mask_blend_epi32(take, *at, v_at);
}

__attribute__((target("avx512f")))
static void max_pool3x3s2_16(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                             int32_t *indices) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (long oh = 0; oh < ho; oh++) {
        for (long ow0 = 0; ow0 < wo; ow0 += 16) {
            __m512 best = _mm512_set1_ps(-INFINITY);
            const long first = 2 * ow0 - pl;
            // Before any comparison the argmax is the window's first element inside the plane.
            const long top = 2 * oh - pt < 0 ? 0 : 2 * oh - pt;
            __m512i at = _mm512_add_epi32(_mm512_set1_epi32((int)(top * w)),
                                          _mm512_max_epi32(_mm512_add_epi32(_mm512_set1_epi32((int)first), even),
                                                           _mm512_setzero_si512()));
            for (long i = 0; i < 3; i++) {
                const long r = 2 * oh - pt + i;
                if (r < 0 || r >= h) continue;
                __m512 c0, c1, c2, unused;
                pool_columns(plane + r * w, first, w, &c0, &c1);
                pool_columns(plane + r * w, first + 2, w, &c2, &unused);
                if (indices) {
                    const __m512i base = _mm512_add_epi32(_mm512_set1_epi32((int)(r * w + first)), even);
                    pool_take_at(&best, &at, c0, base);
                    pool_take_at(&best, &at, c1, _mm512_add_epi32(base, _mm512_set1_epi32(1)));
                    pool_take_at(&best, &at, c2, _mm512_add_epi32(base, _mm512_set1_epi32(2)));
                } else {
                    best = pool_take(pool_take(pool_take(best, c0), c1), c2);
                }
            }
            const __mmask16 lanes = first_lanes(wo - ow0);
            _mm512_mask_storeu_ps(out + oh * wo + ow0, lanes, best);
            if (indices) _mm512_mask_storeu_epi32(indices + oh * wo + ow0, lanes, at);
        }
    }
}

int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices) {
    if (selected != run_avx512) return 0;
    max_pool3x3s2_16(plane, h, w, pt, pl, ho, wo, out, indices);
    return 1;
}

int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry) {
    if (selected != run_avx512 || geometry[12] != 1) return 0;
    depthwise_forward_direct16(plane, weight, bias, out, geometry);
    return 1;
}

int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps) {
    if (selected != run_avx512) return 0;
    depthwise_forward_plane16(packed, weight, bias, out, geometry, taps);
    return 1;
}

int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps) {
    if (selected != run_avx512) return 0;
    depthwise_backward_plane16(dy, packed, weight, acc, dpacked, dy_pad, geometry, taps);
    return 1;
}

// ---------------------------------------------------------------- softmax over contiguous rows

// Attention's rows are short (64, 16 or 4 keys in MobileViT-XXS at 128 px), so the per-row calls
// of a max pass, an exp pass and a scaling pass cost more than the arithmetic; here a row of up
// to sixteen keys is one vector from load to store.
__attribute__((target("avx512f")))
static void softmax_rows16(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    for (size_t row = 0; row < rows; row++) {
        const float *x = src + row * r;
        float *y = dst + row * r;
        __m512 mv = minus_inf;
        for (size_t i = 0; i < r; i += 16) {
            __mmask16 k = first_lanes((long)(r - i));
            mv = _mm512_max_ps(_mm512_mask_loadu_ps(minus_inf, k, x + i), mv);
        }
        float m = _mm512_reduce_max_ps(mv);
        if (!isfinite(m)) m = 0.0f;
        const __m512 shift = _mm512_set1_ps(m);
        __m512 sv = _mm512_setzero_ps();
        for (size_t i = 0; i < r; i += 16) {
            __mmask16 k = first_lanes((long)(r - i));
            __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), shift)));
            if (!log_softmax) _mm512_mask_storeu_ps(y + i, k, e);
            sv = _mm512_add_ps(sv, e);
        }
        float sum = _mm512_reduce_add_ps(sv);
        if (log_softmax) {
            const __m512 ls = _mm512_set1_ps(logf(sum) + m);
            for (size_t i = 0; i < r; i += 16) {
                __mmask16 k = first_lanes((long)(r - i));
                _mm512_mask_storeu_ps(y + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), ls));
            }
        } else {
            const __m512 inv = _mm512_set1_ps(1.0f / sum);
            for (size_t i = 0; i < r; i += 16) {
                __mmask16 k = first_lanes((long)(r - i));
                _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), inv));
            }
        }
    }
}

int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    if (selected != run_avx512) return 0;
    softmax_rows16(src, dst, rows, r, log_softmax);
    return 1;
}

// ---------------------------------------------------------------- BatchNorm (eval) + activation

__attribute__((target("avx512f"), always_inline))
static inline __m512 activate16(__m512 y, const int activation);

__attribute__((target("avx512f"), always_inline))
static inline __m512 affine_act16(__m512 x, __m512 mean, __m512 scale, __m512 shift, const int activation,
                                  const int shift_only) {
    // (x − 0)·1 + s is x + s exactly, so the shift-only form gives the same bits.
    __m512 y = shift_only ? _mm512_add_ps(x, shift) : _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(x, mean), scale), shift);
    return activate16(y, activation);
}

__attribute__((target("avx512f"), always_inline))
static inline __m512 activate16(__m512 y, const int activation) {
    const __m512 zero = _mm512_setzero_ps(), three = _mm512_set1_ps(3.0f), six = _mm512_set1_ps(6.0f);
    switch (activation) {
    case 1: return _mm512_max_ps(y, zero);
    case 2: return _mm512_min_ps(_mm512_max_ps(y, zero), six);
    case 3: return _mm512_div_ps(_mm512_mul_ps(y, _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(y, three), zero), six)), six);
    case 4: return _mm512_div_ps(_mm512_min_ps(_mm512_max_ps(_mm512_add_ps(y, three), zero), six), six);
    case 5: return apply16(OP_SILU, y, y, zero);
    case 6: return apply16(OP_SIGMOID, y, y, zero);
    default: return y;
    }
}

// `body` with ACT the activation code as a constant, so each activation gets its own loop and
// none is chosen per vector.
#define PER_ACTIVATION(code, body)                  \
    switch (code) {                                 \
    case 1: { enum { ACT = 1 }; body; } break;      \
    case 2: { enum { ACT = 2 }; body; } break;      \
    case 3: { enum { ACT = 3 }; body; } break;      \
    case 4: { enum { ACT = 4 }; body; } break;      \
    case 5: { enum { ACT = 5 }; body; } break;      \
    case 6: { enum { ACT = 6 }; body; } break;      \
    default: { enum { ACT = 0 }; body; } break;     \
    }

// One loop per (activation, shift-only) pair, so neither choice is made per vector.
__attribute__((target("avx512f"), always_inline))
static inline void affine_act_loop(const float *src, float *dst, size_t n, __m512 m, __m512 a, __m512 b,
                                   const int activation, const int shift_only) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, affine_act16(_mm512_loadu_ps(src + i), m, a, b, activation, shift_only));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, k, affine_act16(_mm512_maskz_loadu_ps(k, src + i), m, a, b, activation, shift_only));
    }
}

__attribute__((target("avx512f")))
static void affine_act_avx512(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                              int activation) {
    const __m512 m = _mm512_set1_ps(mean), a = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
    const int shift_only = mean == 0.0f && scale == 1.0f;
    PER_ACTIVATION(activation, if (shift_only) affine_act_loop(src, dst, n, m, a, b, ACT, 1);
                               else affine_act_loop(src, dst, n, m, a, b, ACT, 0));
}

// x ← act(((x − mean)·scale + shift) + r): a residual block's last BatchNorm, the shortcut and the
// activation after the sum, in one pass over a finished plane.
__attribute__((target("avx512f"), always_inline))
static inline void residual_act_loop(float *x, const float *r, size_t n, __m512 m, __m512 a, __m512 b,
                                     const int activation) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = first_lanes((long)(n - i));
        __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), a), b);
        _mm512_mask_storeu_ps(x + i, k, activate16(_mm512_add_ps(y, _mm512_maskz_loadu_ps(k, r + i)), activation));
    }
}

__attribute__((target("avx512f")))
static void residual_act_avx512(float *x, const float *r, size_t n, float mean, float scale, float shift,
                                int activation) {
    const __m512 m = _mm512_set1_ps(mean), a = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
    PER_ACTIVATION(activation, residual_act_loop(x, r, n, m, a, b, ACT));
}

int finch_residual_activation(float *x, const float *r, size_t n, float mean, float scale, float shift,
                              int activation) {
    if (selected != run_avx512) return 0;
    residual_act_avx512(x, r, n, mean, scale, shift, activation);
    return 1;
}

int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation) {
    if (selected != run_avx512) return 0;
    affine_act_avx512(src, dst, n, mean, scale, shift, activation);
    return 1;
}

// ---------------------------------------------------------------- BatchNorm (training) backward

// Σ(a − sa) and Σ(a − sa)·(b − sb) over a plane, two accumulators each, in one pass: with a = b = x
// and sa = sb = μ these are training BatchNorm's statistics, with a = g, sa = 0, b = x, sb = μ the
// two sums its backward needs (the Swift version read g twice and ran on SSE lanes).
__attribute__((target("avx512f")))
static void centered_products16(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    const __m512 ma = _mm512_set1_ps(sa), mb = _mm512_set1_ps(sb);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, p0 = s0, p1 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), ma), a1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), ma);
        s0 = _mm512_add_ps(s0, a0);
        s1 = _mm512_add_ps(s1, a1);
        p0 = _mm512_fmadd_ps(a0, _mm512_sub_ps(_mm512_loadu_ps(b + i), mb), p0);
        p1 = _mm512_fmadd_ps(a1, _mm512_sub_ps(_mm512_loadu_ps(b + i + 16), mb), p1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = first_lanes((long)(n - i));
        __m512 av = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, a + i), ma);
        s0 = _mm512_add_ps(s0, av);
        p0 = _mm512_fmadd_ps(av, _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, b + i), mb), p0);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
}

int finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    if (selected != run_avx512) return 0;
    centered_products16(a, sa, b, sb, n, out);
    return 1;
}

__attribute__((target("avx512f")))
static void batchnorm_input_gradient16(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                       float mean, float k) {
    const __m512 av = _mm512_set1_ps(a), mg = _mm512_set1_ps(mean_g), m = _mm512_set1_ps(mean), kv = _mm512_set1_ps(k);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 lanes = first_lanes((long)(n - i));
        __m512 gv = _mm512_maskz_loadu_ps(lanes, g + i), xv = _mm512_maskz_loadu_ps(lanes, x + i);
        __m512 t = _mm512_fnmadd_ps(_mm512_sub_ps(xv, m), kv, _mm512_sub_ps(gv, mg));
        _mm512_mask_storeu_ps(dx + i, lanes, _mm512_mul_ps(av, t));
    }
}

int finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                   float mean, float k) {
    if (selected != run_avx512) return 0;
    batchnorm_input_gradient16(g, x, dx, n, a, mean_g, mean, k);
    return 1;
}

int finch_avx512_selected(void) { return selected == run_avx512; }

const char *finch_kernels_isa(void) {
    runner r = chosen();
    return r == run_avx512 ? "avx512" : (r == run_avx2 ? "avx2" : "generic");
}

int finch_kernels_use(const char *isa) {
    if (strcmp(isa, "generic") == 0) selected = run_generic;
    else if (strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) selected = run_avx2;
    else if (strcmp(isa, "avx512") == 0 && __builtin_cpu_supports("avx512f")) selected = run_avx512;
    else return 0;
    return 1;
}
#else
typedef void (*runner)(enum op, const float *, const float *, float *, size_t, float);
static runner chosen(void) { return run_generic; }
long finch_depthwise_tiles16_scratch(const long *g) { (void)g; return 0; }
int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch) {
    (void)x; (void)weight; (void)bias; (void)out; (void)geometry; (void)unit_begin; (void)unit_end; (void)scratch;
    return 0;
}
int finch_avx512_selected(void) { return 0; }
int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps) {
    (void)packed; (void)weight; (void)bias; (void)out; (void)geometry; (void)taps;
    return 0;
}
int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices) {
    (void)plane; (void)h; (void)w; (void)pt; (void)pl; (void)ho; (void)wo; (void)out; (void)indices;
    return 0;
}
int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry) {
    (void)plane; (void)weight; (void)bias; (void)out; (void)geometry;
    return 0;
}
int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps) {
    (void)dy; (void)packed; (void)weight; (void)acc; (void)dpacked; (void)dy_pad; (void)geometry; (void)taps;
    return 0;
}
int finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    (void)a; (void)sa; (void)b; (void)sb; (void)n; (void)out;
    return 0;
}
int finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                   float mean, float k) {
    (void)g; (void)x; (void)dx; (void)n; (void)a; (void)mean_g; (void)mean; (void)k;
    return 0;
}
int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    (void)src; (void)dst; (void)rows; (void)r; (void)log_softmax;
    return 0;
}
const char *finch_kernels_isa(void) { return "generic"; }
int finch_kernels_use(const char *isa) { return strcmp(isa, "generic") == 0; }
int finch_residual_activation(float *x, const float *r, size_t n, float mean, float scale, float shift,
                              int activation) {
    (void)x; (void)r; (void)n; (void)mean; (void)scale; (void)shift; (void)activation;
    return 0;
}
int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation) {
    (void)src; (void)dst; (void)n; (void)mean; (void)scale; (void)shift; (void)activation;
    return 0;
}
#endif

void finch_exp_shifted(const float *src, float *dst, size_t n, float shift) { chosen()(OP_EXP, src, 0, dst, n, shift); }
void finch_silu(const float *src, float *dst, size_t n) { chosen()(OP_SILU, src, 0, dst, n, 0); }
void finch_sigmoid(const float *src, float *dst, size_t n) { chosen()(OP_SIGMOID, src, 0, dst, n, 0); }
void finch_silu_backward(const float *g, const float *x, float *dst, size_t n) {
    chosen()(OP_SILU_BACKWARD, g, x, dst, n, 0);
}
