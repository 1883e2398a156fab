// exp, SiLU and sigmoid on the generic, AVX2 and AVX-512 paths (include/Exponentials.h). The
// exponential is Cody–Waite range reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, Cephes' degree-7
// polynomial for eʳ, and 2ⁿ built in two halves (so n from −150 to 128 needs no special case) or,
// on AVX-512, by scalef; within 2 ulp of exp over the Float range.

#include "Exponentials.h"
#include "Exponential16.h"
#include "Exponential8.h"
#include "KernelSupport.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

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
static inline __m256 apply8(enum op op, __m256 a, __m256 b, __m256 shift) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (op) {
    case OP_EXP: return exp8(_mm256_sub_ps(a, shift));
    case OP_SILU: return silu8(a);
    case OP_SIGMOID: return sigmoid8(a);
    case OP_SILU_BACKWARD: {
        __m256 s = sigmoid8(b);
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

// The path KernelDispatch.c chose (or a test switched to).
static runner chosen(void) {
    switch (finch_kernels_path()) {
    case FINCH_KERNELS_AVX512: return run_avx512;
    case FINCH_KERNELS_AVX2: return run_avx2;
    default: return run_generic;
    }
}
#else
typedef void (*runner)(enum op, const float *, const float *, float *, size_t, float);
static runner chosen(void) { return run_generic; }
#endif

void finch_exp_shifted(const float *src, float *dst, size_t n, float shift) { chosen()(OP_EXP, src, 0, dst, n, shift); }
void finch_silu(const float *src, float *dst, size_t n) { chosen()(OP_SILU, src, 0, dst, n, 0); }
void finch_sigmoid(const float *src, float *dst, size_t n) { chosen()(OP_SIGMOID, src, 0, dst, n, 0); }
void finch_silu_backward(const float *g, const float *x, float *dst, size_t n) {
    chosen()(OP_SILU_BACKWARD, g, x, dst, n, 0);
}
