// Training-mode BatchNorm: a plane's centred sums (its statistics, and its backward's two sums) and
// its input gradient (see Normalization.swift), on every kernel path. The sums feed gradients that
// cancel (dγ, and dx's correction terms), so no path rounds a product before adding it: AVX-512 uses
// FMA over thirty-two Float partial sums, AVX2 and generic compute in Double. The old fallback, a
// Float dot product over eight lanes, left mobilenetv3_small's SE gradients 4× PyTorch float32's
// distance to float64.

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

// The AVX2 form: the generic path's Double arithmetic (a Float product is exact in Double, so only
// the sums round, at 2⁻⁵³), four lanes at a time with four partial sums each. Float lanes with FMA,
// as on AVX-512, were tried: equally accurate on paper, but they left the SE gradients of
// mobilevit_xxs and mobilenetv3_large at 3.5–3.6× PyTorch float32's distance to float64 where
// Double stays within the rule, and they made the AVX2 and generic paths differ.
__attribute__((target("avx2,fma")))
static void centered_products4d(const float *a, float sa, const float *b, float sb, size_t n, float *out) {
    const __m256d ma = _mm256_set1_pd(sa), mb = _mm256_set1_pd(sb);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, p0 = s0, p1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i)), ma);
        __m256d a1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 4)), ma);
        s0 = _mm256_add_pd(s0, a0);
        s1 = _mm256_add_pd(s1, a1);
        p0 = _mm256_fmadd_pd(a0, _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(b + i)), mb), p0);
        p1 = _mm256_fmadd_pd(a1, _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(b + i + 4)), mb), p1);
    }
    double ls[4], lp[4];
    _mm256_storeu_pd(ls, _mm256_add_pd(s0, s1));
    _mm256_storeu_pd(lp, _mm256_add_pd(p0, p1));
    double st = (ls[0] + ls[1]) + (ls[2] + ls[3]), pt = (lp[0] + lp[1]) + (lp[2] + lp[3]);
    for (; i < n; i++) {
        double av = (double)a[i] - sa;
        st += av;
        pt += av * ((double)b[i] - sb);
    }
    out[0] = (float)st;
    out[1] = (float)pt;
}

__attribute__((target("avx2,fma")))
static void batchnorm_input_gradient4d(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                       float mean, float k) {
    const __m256d mg = _mm256_set1_pd(mean_g), m = _mm256_set1_pd(mean), kv = _mm256_set1_pd(k);
    const __m128 av = _mm_set1_ps(a);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d gv = _mm256_cvtps_pd(_mm_loadu_ps(g + i)), xv = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d t = _mm256_sub_pd(_mm256_sub_pd(gv, mg), _mm256_mul_pd(_mm256_sub_pd(xv, m), kv));
        _mm_storeu_ps(dx + i, _mm_mul_ps(av, _mm256_cvtpd_ps(t)));
    }
    for (; i < n; i++) dx[i] = a * (float)(((double)g[i] - mean_g) - ((double)x[i] - mean) * k);
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
    else if (finch_kernels_path() >= FINCH_KERNELS_AVX2) centered_products4d(a, sa, b, sb, n, out);
    else
#endif
        centered_products_generic(a, sa, b, sb, n, out);
}

void finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                    float mean, float k) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (finch_avx512_selected()) batchnorm_input_gradient16(g, x, dx, n, a, mean_g, mean, k);
    else if (finch_kernels_path() >= FINCH_KERNELS_AVX2) batchnorm_input_gradient4d(g, x, dx, n, a, mean_g, mean, k);
    else
#endif
        batchnorm_input_gradient_generic(g, x, dx, n, a, mean_g, mean, k);
}
