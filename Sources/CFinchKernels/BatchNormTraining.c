// Training-mode BatchNorm: a plane's centred sums (its statistics, and its backward's two sums) and
// its input gradient (see Normalization.swift), on every kernel path. The sums feed gradients that
// cancel (dγ, and dx's correction terms), so each path keeps its products unrounded (FMA, or Double
// where there is no FMA) and spreads the sum over independent partial sums: a plain Float dot
// product left mobilenetv3_small's SE gradients 4× PyTorch float32's distance to float64.

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

// The AVX2 form of centered_products16: the same thirty-two partial sums (four vectors of eight)
// with fused products.
__attribute__((target("avx2,fma")))
static void centered_products8(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    const __m256 ma = _mm256_set1_ps(sa), mb = _mm256_set1_ps(sb);
    __m256 s[4], p[4];
    for (int k = 0; k < 4; k++) s[k] = p[k] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            __m256 av = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8 * k), ma);
            s[k] = _mm256_add_ps(s[k], av);
            p[k] = _mm256_fmadd_ps(av, _mm256_sub_ps(_mm256_loadu_ps(b + i + 8 * k), mb), p[k]);
        }
    }
    float ta[32] = {0}, tb[32] = {0};
    for (size_t t = 0; i + t < n; t++) {
        ta[t] = a[i + t] - sa;
        tb[t] = b[i + t] - sb;
    }
    for (int k = 0; k < 4; k++) {
        __m256 av = _mm256_loadu_ps(ta + 8 * k);
        s[k] = _mm256_add_ps(s[k], av);
        p[k] = _mm256_fmadd_ps(av, _mm256_loadu_ps(tb + 8 * k), p[k]);
    }
    float ls[8], lp[8];
    _mm256_storeu_ps(ls, _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])));
    _mm256_storeu_ps(lp, _mm256_add_ps(_mm256_add_ps(p[0], p[1]), _mm256_add_ps(p[2], p[3])));
    out[0] = ((ls[0] + ls[1]) + (ls[2] + ls[3])) + ((ls[4] + ls[5]) + (ls[6] + ls[7]));
    out[1] = ((lp[0] + lp[1]) + (lp[2] + lp[3])) + ((lp[4] + lp[5]) + (lp[6] + lp[7]));
}

__attribute__((target("avx2,fma")))
static void batchnorm_input_gradient8(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                      float mean, float k) {
    const __m256 av = _mm256_set1_ps(a), mg = _mm256_set1_ps(mean_g), m = _mm256_set1_ps(mean), kv = _mm256_set1_ps(k);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_fnmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), kv, _mm256_sub_ps(_mm256_loadu_ps(g + i), mg));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(av, t));
    }
    for (; i < n; i++) dx[i] = a * __builtin_fmaf(-(x[i] - mean), k, g[i] - mean_g);
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

#endif

// Without FMA: the products and sums in Double (a Float product is exact there), four partial sums.
static void centered_products_generic(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    double s[4] = {0, 0, 0, 0}, p[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; k++) {
            double av = (double)a[i + k] - sa;
            s[k] += av;
            p[k] += av * ((double)b[i + k] - sb);
        }
    }
    for (int k = 0; i < n; i++, k++) {
        double av = (double)a[i] - sa;
        s[k] += av;
        p[k] += av * ((double)b[i] - sb);
    }
    out[0] = (float)((s[0] + s[1]) + (s[2] + s[3]));
    out[1] = (float)((p[0] + p[1]) + (p[2] + p[3]));
}

static void batchnorm_input_gradient_generic(const float *g, const float *x, float *dx, size_t n, float a,
                                             float mean_g, float mean, float k) {
    for (size_t i = 0; i < n; i++)
        dx[i] = a * (float)(((double)g[i] - mean_g) - ((double)x[i] - mean) * k);
}

void finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (finch_avx512_selected()) centered_products16(a, sa, b, sb, n, out);
    else if (finch_kernels_path() >= FINCH_KERNELS_AVX2) centered_products8(a, sa, b, sb, n, out);
    else
#endif
        centered_products_generic(a, sa, b, sb, n, out);
}

void finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                    float mean, float k) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (finch_avx512_selected()) batchnorm_input_gradient16(g, x, dx, n, a, mean_g, mean, k);
    else if (finch_kernels_path() >= FINCH_KERNELS_AVX2) batchnorm_input_gradient8(g, x, dx, n, a, mean_g, mean, k);
    else
#endif
        batchnorm_input_gradient_generic(g, x, dx, n, a, mean_g, mean, k);
}
