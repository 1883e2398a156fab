// The AVX2 + FMA forms of kernels that also have AVX-512 forms, for CPUs without AVX-512. Each
// public entry point (in the AVX-512 file of its family) calls its AVX2 form when the dispatcher
// chose the avx2 path; the arguments and results are the public function's.

#ifndef FINCH_KERNELS_AVX2_H
#define FINCH_KERNELS_AVX2_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// Lanes l < count with 0 ≤ start + l < limit, as all-ones lanes: the mask every AVX2 kernel uses
// for a plane's edges and a row's partial last vector (AVX2 has no mask registers).
__attribute__((target("avx2,fma"), always_inline)) static inline __m256i finch_avx2_span(long start, long limit,
                                                                                        long count) {
    long lo = start < 0 ? -start : 0, hi = limit - start;
    if (hi > count) hi = count;
    if (hi > 8) hi = 8;
    if (lo > 8) lo = 8;
    if (hi < lo) hi = lo;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), lane),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane));
}

// WinogradTransformsAVX2.c: F(2×2, 3×3), as finch_winograd_*_transform.
void finch_winograd_weight_transform_avx2(const float *w, long plane, float *u, long begin, long end);
void finch_winograd_input_transform_avx2(const float *plane, long h, long w, long pt, long pl, long th, long tw,
                                         float *dst, long stride);
void finch_winograd_gradient_transform_avx2(const float *plane, long ho, long wo, long th, long tw, float *dst,
                                            long stride);
void finch_winograd_output_transform_avx2(const float *src, long stride, long th, long tw, long ho, long wo,
                                          float bias, float *out);

// WinogradF4TransformsAVX2.c: F(4×4, 3×3), as finch_winograd4_*.
void finch_winograd4_weight_transform_avx2(const float *w, long plane, float *u, long begin, long end);
void finch_winograd4_weight_gradient_avx2(const float *du, long plane, float *dw, long begin, long end);
void finch_winograd4_input_transform_avx2(const float *x, long sample_stride, long samples, long h, long w, long pt,
                                          long pl, long th, long tw, float *dst, long stride);
void finch_winograd4_gradient_transform_avx2(const float *dy, long sample_stride, long samples, long ho, long wo,
                                             long th, long tw, float *dst, long stride);
void finch_winograd4_output_transform_avx2(const float *src, long stride, long samples, long th, long tw, long ho,
                                           long wo, long sample_stride, float bias, float *out);

// DepthwiseConvKernelsAVX2.c, as finch_depthwise_forward_plane, _forward_direct and _backward_plane.
void finch_depthwise_forward_plane_avx2(const float *packed, const float *weight, float bias, float *out,
                                        const long *geometry, const long *taps);
void finch_depthwise_forward_direct_avx2(const float *plane, const float *weight, float bias, float *out,
                                         const long *geometry);
void finch_depthwise_backward_plane_avx2(const float *dy, const float *packed, const float *weight, float *acc,
                                         float *dpacked, float *dy_pad, const long *geometry, const long *taps);

// DepthwiseChannelTilesAVX2.c, as finch_depthwise_tiles16 (same units and scratch).
void finch_depthwise_tiles16_avx2(const float *x, const float *weight, const float *bias, float *out, const long *g,
                                  long unit_begin, long unit_end, float *scratch);

// MaxPool3x3s2AVX2.c, as finch_max_pool3x3s2.
void finch_max_pool3x3s2_avx2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                              int32_t *indices);

// BatchNormActivationAVX2.c, as finch_affine_activation and finch_residual_activation.
void finch_affine_activation_avx2(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                                  int activation);
void finch_residual_activation_avx2(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                                    float shift, int activation);
void finch_affine_silu_backward_avx2(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                                     float shift);

// FewChannelConvAVX2.c, as finch_few_channel_conv (same units and scratch).
void finch_few_channel_conv_avx2(const float *x, const float *weight, const float *bias, float *out, const long *g,
                                 long unit_begin, long unit_end, float *scratch);

// SmallPlanePointwiseAVX2.c, as finch_pointwise_small (same units and scratch); the rows of output
// channels per block for a plane of hw pixels, which finch_pointwise_small_units uses.
void finch_pointwise_small_avx2(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                                long cout, long hw, long unit_begin, long unit_end, float *packed);
long finch_pointwise_small_rows_avx2(long hw);

// SoftmaxRowsAVX2.c, as finch_softmax_rows.
void finch_softmax_rows_avx2(const float *src, float *dst, size_t rows, size_t r, int log_softmax);
#endif

#endif
