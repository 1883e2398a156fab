// The sixteen-lane exponential and logistic shared by the exponentials, softmax and the BatchNorm
// activations. See Exponentials.c for the method.

#ifndef FINCH_EXPONENTIAL16_H
#define FINCH_EXPONENTIAL16_H

#include <math.h>

#define EXP_HI 88.72283f
#define EXP_LO -103.97208f

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

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
#endif

#endif
