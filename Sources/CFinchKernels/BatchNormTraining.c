// Training-mode BatchNorm on AVX-512: a plane's centred sums (its statistics, and its backward's
// two sums) and its input gradient (see Normalization.swift).

#include "BatchNormTraining.h"
#include "KernelSupport.h"
#include <stddef.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

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
    if (!finch_avx512_selected()) return 0;
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
    if (!finch_avx512_selected()) return 0;
    batchnorm_input_gradient16(g, x, dx, n, a, mean_g, mean, k);
    return 1;
}
#else
int finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    (void)a; (void)sa; (void)b; (void)sb; (void)n; (void)out;
    return 0;
}
int finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                   float mean, float k) {
    (void)g; (void)x; (void)dx; (void)n; (void)a; (void)mean_g; (void)mean; (void)k;
    return 0;
}
#endif
