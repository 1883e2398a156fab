// The eight-lane (AVX2 + FMA) exponential shared by the exponentials and the BatchNorm activations.
// See Exponentials.c for the method.

#ifndef FINCH_EXPONENTIAL8_H
#define FINCH_EXPONENTIAL8_H

#include <math.h>
#include "Exponential16.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// The reduction and polynomial of exp8 for an already clamped xc: returns e^r with
// xc = n·ln2 + r and leaves n in *ni (as an integer). Shared by exp8 and the attention kernel's
// exponential for x ≤ 0 (SelfAttention.c), which differ only in clamping and in the 2ⁿ scaling.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 exp8_reduced(__m256 xc, __m256i *ni) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    *ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    return _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
}

__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(EXP_HI), lo = _mm256_set1_ps(EXP_LO);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256i ni;
    __m256 p = exp8_reduced(xc, &ni);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// e^y where only 1 + e^y is wanted (SiLU, sigmoid and SiLU's backward): exp8's bits wherever the
// sum can see them, in about two thirds of its instructions. Below y = −87, e^y < 2⁻¹²⁵ vanishes
// beside 1, so the clamp there may round it to 0 (exp8 goes on through the subnormals), and with
// n ≥ −126 one scale 2ⁿ⁻¹ applied to p + p (exact) replaces exp8's two halves: n = 128, the top,
// still fits. exp8's blends for NaN and for e^y → 0 go too: a NaN y is max's and min's second
// operand so it passes through, and the sum does not care about the low end. Above EXP_HI the
// result is ∞, as exp8's. Checked against exp8 on all 2³² inputs of silu8 (equal bits; on the
// shared 2-core machine 0.87 → 0.55 ns per element for SiLU over an L1-resident buffer).
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 exp8_beside_one(__m256 y) {
    const __m256 hi = _mm256_set1_ps(EXP_HI);
    __m256 yc = _mm256_min_ps(hi, _mm256_max_ps(_mm256_set1_ps(-87.0f), y));
    __m256i ni;
    __m256 p = exp8_reduced(yc, &ni);
    __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(126)), 23));
    __m256 e = _mm256_mul_ps(_mm256_add_ps(p, p), s);
    return _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(y, hi, _CMP_GT_OQ));
}

// 1 + e⁻ˣ, the logistic's denominator.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 logistic_denominator8(__m256 x) {
    return _mm256_add_ps(_mm256_set1_ps(1.0f), exp8_beside_one(_mm256_sub_ps(_mm256_setzero_ps(), x)));
}

// x / (1 + e⁻ˣ) and 1 / (1 + e⁻ˣ) with a true division, as the AVX2 exponentials compute them, so a
// kernel that fuses them gives the same bits as finch_silu / finch_sigmoid on this path. The
// division stays: on Zen 4 a reciprocal estimate with one Newton step was slower (0.71 against 0.68
// ns per element) and 2.6ε off the quotient, where the division rounds once.
__attribute__((target("avx2,fma")))
static inline __m256 silu8(__m256 x) {
    return _mm256_div_ps(x, logistic_denominator8(x));
}

__attribute__((target("avx2,fma")))
static inline __m256 sigmoid8(__m256 x) {
    return _mm256_div_ps(_mm256_set1_ps(1.0f), logistic_denominator8(x));
}
#endif

#endif
