// Evaluation-mode BatchNorm with its activation, and a residual block's end (BatchNorm, shortcut,
// activation), on AVX-512 (see ConvBatchNormInference.swift and Normalization.swift); the AVX2 forms
// are in BatchNormActivationAVX2.c.

#include "BatchNormActivation.h"
#include "Exponential16.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include <stddef.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

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
    case 5: return _mm512_mul_ps(y, logistic16(y));
    case 6: return logistic16(y);
    default: return y;
    }
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

// dst ← act(((x − mean)·scale + shift) + r): a residual block's last BatchNorm, the shortcut and the
// activation after the sum, in one pass over a plane. dst may be x or r: each vector is loaded
// before its store.
__attribute__((target("avx512f"), always_inline))
static inline void residual_act_loop(const float *x, const float *r, float *dst, size_t n, __m512 m, __m512 a,
                                     __m512 b, const int activation) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = first_lanes((long)(n - i));
        __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), a), b);
        _mm512_mask_storeu_ps(dst + i, k, activate16(_mm512_add_ps(y, _mm512_maskz_loadu_ps(k, r + i)), activation));
    }
}

__attribute__((target("avx512f")))
static void residual_act_avx512(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                                float shift, int activation) {
    const __m512 m = _mm512_set1_ps(mean), a = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
    PER_ACTIVATION(activation, residual_act_loop(x, r, dst, n, m, a, b, ACT));
}

// BatchNorm+SiLU's gradient to z in one pass (see finch_affine_silu_backward_avx2): the affine map
// as affine_act16 computes it with identity, then SiLU's backward as Exponentials.c's apply16.
__attribute__((target("avx512f")))
static void affine_silu_backward_avx512(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                                        float shift) {
    const __m512 m = _mm512_set1_ps(mean), a = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = first_lanes((long)(n - i));
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), a), b);
        __m512 s = logistic16(z);
        __m512 inner = _mm512_add_ps(one, _mm512_mul_ps(z, _mm512_sub_ps(one, s)));
        _mm512_mask_storeu_ps(dst + i, k, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), s), inner));
    }
}

int finch_affine_silu_backward(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                               float shift) {
    if (finch_avx2_selected()) {
        finch_affine_silu_backward_avx2(g, x, dst, n, mean, scale, shift);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    affine_silu_backward_avx512(g, x, dst, n, mean, scale, shift);
    return 1;
}

int finch_residual_activation(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                              float shift, int activation) {
    if (finch_avx2_selected()) {
        finch_residual_activation_avx2(x, r, dst, n, mean, scale, shift, activation);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    residual_act_avx512(x, r, dst, n, mean, scale, shift, activation);
    return 1;
}

int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation) {
    if (finch_avx2_selected()) {
        finch_affine_activation_avx2(src, dst, n, mean, scale, shift, activation);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    affine_act_avx512(src, dst, n, mean, scale, shift, activation);
    return 1;
}
#else
int finch_affine_silu_backward(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                               float shift) {
    (void)g; (void)x; (void)dst; (void)n; (void)mean; (void)scale; (void)shift;
    return 0;
}
int finch_residual_activation(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                              float shift, int activation) {
    (void)x; (void)r; (void)dst; (void)n; (void)mean; (void)scale; (void)shift; (void)activation;
    return 0;
}
int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation) {
    (void)src; (void)dst; (void)n; (void)mean; (void)scale; (void)shift; (void)activation;
    return 0;
}
#endif
