// Winograd F(4×4, 3×3) transforms on AVX-512 (WinogradF4Transforms.c) or AVX2
// (WinogradF4TransformsAVX2.c, the same bits).

#ifndef FINCH_WINOGRAD_F4_TRANSFORMS_H
#define FINCH_WINOGRAD_F4_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

/// Each returns 1, or 0 without touching anything when neither the AVX-512 nor the AVX2 path is
/// selected. Transformed matrices are ξ = 6·row + column, `stride` floats apart; within one,
/// element f = sample · th·tw + ty·tw + tx.
/// Weights: u[ξ·plane + p] = (G·g·Gᵀ)[ξ] for filters begin..<end of w [plane, 3, 3].
int finch_winograd4_weight_transform(const float *w, long plane, float *u, long begin, long end);
/// Weight gradient: dw[p] = Gᵀ·du[p]·G for filters begin..<end (du laid out as u above).
int finch_winograd4_weight_gradient(const float *du, long plane, float *dw, long begin, long end);
/// Input: `samples` planes [h, w] of one channel, sample_stride apart, padded by (pt, pl), onto
/// th × tw tiles of 6×6. Offsets within the `samples` planes must fit in 32 bits.
int finch_winograd4_input_transform(const float *x, long sample_stride, long samples, long h, long w, long pt,
                                    long pl, long th, long tw, float *dst, long stride);
/// Output gradient for the weight gradient: (A·dY·Aᵀ) of each 4×4 block of `samples` planes [ho, wo]
/// (zero past the edges).
int finch_winograd4_gradient_transform(const float *dy, long sample_stride, long samples, long ho, long wo, long th,
                                       long tw, float *dst, long stride);
/// Output: out[s, 4ty + a, 4tx + b] = (Aᵀ·M·A)[a, b] + bias for `samples` planes [ho, wo],
/// sample_stride apart, clipped at the edges.
int finch_winograd4_output_transform(const float *src, long stride, long samples, long th, long tw, long ho, long wo,
                                     long sample_stride, float bias, float *out);

#endif
