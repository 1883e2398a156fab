// BatchNorm's per-channel pass with its activation, and a residual block's end, on AVX2 + FMA (see
// BatchNormActivation.c, whose entry points call these on the avx2 path). Without them an AVX2 CPU
// ran the Swift fallback: one SSE pass for the affine map and a second for the activation, over
// every BatchNorm output in training and every convolution's epilogue in evaluation.
//
// Same operations in the same order as that fallback (sub, mul, add without FMA, then the
// activation as the Swift kernels write it; silu and sigmoid as finch_silu / finch_sigmoid compute
// them on this path, Exponential8.h), so finite inputs give the same bits as before.

#include "KernelsAVX2.h"
#include "KernelSupport.h"
#include "Exponential8.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

INLINE __m256 activate8(__m256 y, const int activation) {
    const __m256 zero = _mm256_setzero_ps(), three = _mm256_set1_ps(3.0f), six = _mm256_set1_ps(6.0f);
    switch (activation) {
    case 1: return _mm256_max_ps(y, zero);
    case 2: return _mm256_min_ps(_mm256_max_ps(y, zero), six);
    case 3: return _mm256_div_ps(_mm256_mul_ps(y, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(y, three), zero), six)), six);
    case 4: return _mm256_div_ps(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(y, three), zero), six), six);
    case 5: return silu8(y);
    case 6: return sigmoid8(y);
    default: return y;
    }
}

INLINE __m256 affine8(__m256 x, __m256 m, __m256 a, __m256 b, const int shift_only) {
    // (x − 0)·1 + s is x + s exactly, so the shift-only form gives the same bits.
    return shift_only ? _mm256_add_ps(x, b) : _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(x, m), a), b);
}

// The partial last vector goes through a zero-padded copy: AVX2's masked stores are microcoded on
// the AVX2-only AMD cores, and a plane of 7×7 or 4×4 values ends in one on every channel.
INLINE void affine_act_loop(const float *src, float *dst, size_t n, __m256 m, __m256 a, __m256 b,
                            const int activation, const int shift_only) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, activate8(affine8(_mm256_loadu_ps(src + i), m, a, b, shift_only), activation));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, src + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(t, activate8(affine8(_mm256_loadu_ps(t), m, a, b, shift_only), activation));
        memcpy(dst + i, t, (n - i) * sizeof(float));
    }
}

// dst may be x or r: each vector is loaded before its store.
INLINE void residual_act_loop(const float *x, const float *r, float *dst, size_t n, __m256 m, __m256 a, __m256 b,
                              const int activation) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = affine8(_mm256_loadu_ps(x + i), m, a, b, 0);
        _mm256_storeu_ps(dst + i, activate8(_mm256_add_ps(y, _mm256_loadu_ps(r + i)), activation));
    }
    if (i < n) {
        float t[8] = {0}, u[8] = {0};
        memcpy(t, x + i, (n - i) * sizeof(float));
        memcpy(u, r + i, (n - i) * sizeof(float));
        __m256 y = affine8(_mm256_loadu_ps(t), m, a, b, 0);
        _mm256_storeu_ps(t, activate8(_mm256_add_ps(y, _mm256_loadu_ps(u)), activation));
        memcpy(dst + i, t, (n - i) * sizeof(float));
    }
}


__attribute__((target("avx2,fma")))
void finch_affine_activation_avx2(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                                  int activation) {
    const __m256 m = _mm256_set1_ps(mean), a = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
    const int shift_only = mean == 0.0f && scale == 1.0f;
    PER_ACTIVATION(activation, if (shift_only) affine_act_loop(src, dst, n, m, a, b, ACT, 1);
                               else affine_act_loop(src, dst, n, m, a, b, ACT, 0));
}

__attribute__((target("avx2,fma")))
void finch_residual_activation_avx2(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                                    float shift, int activation) {
    const __m256 m = _mm256_set1_ps(mean), a = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
    PER_ACTIVATION(activation, residual_act_loop(x, r, dst, n, m, a, b, ACT));
}

// BatchNorm+SiLU's gradient to z = (x − mean)·scale + shift in one pass: z is rebuilt in registers,
// where the two-pass form (finch_affine_activation with identity, then finch_silu_backward) wrote it
// to a buffer and read it back. Same operations, so the same bits ((x − 0)·1 + s is x + s exactly,
// so the shift-only form needs no loop of its own).
INLINE __m256 affine_silu_backward8(__m256 g, __m256 x, __m256 m, __m256 a, __m256 b) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 z = affine8(x, m, a, b, 0), s = sigmoid8(z);
    return _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_add_ps(one, _mm256_mul_ps(z, _mm256_sub_ps(one, s))));
}

__attribute__((target("avx2,fma")))
void finch_affine_silu_backward_avx2(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                                     float shift) {
    const __m256 m = _mm256_set1_ps(mean), a = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, affine_silu_backward8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(x + i), m, a, b));
    if (i < n) {
        float tg[8] = {0}, tx[8] = {0};
        memcpy(tg, g + i, (n - i) * sizeof(float));
        memcpy(tx, x + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(tg, affine_silu_backward8(_mm256_loadu_ps(tg), _mm256_loadu_ps(tx), m, a, b));
        memcpy(dst + i, tg, (n - i) * sizeof(float));
    }
}
#endif
