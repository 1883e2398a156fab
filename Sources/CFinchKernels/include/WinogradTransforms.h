// Winograd F(2×2, 3×3) transforms on AVX-512 (WinogradTransforms.c) or AVX2 (WinogradTransformsAVX2.c).

#ifndef FINCH_WINOGRAD_TRANSFORMS_H
#define FINCH_WINOGRAD_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

/// Winograd F(2×2, 3×3) weight transform of filters begin..<end of w [plane, 3, 3]:
/// u[ξ·plane + p] = (G·g·Gᵀ)[ξ]. Bit-equal to the Swift kernel. Returns 0 when neither the AVX-512 nor
/// the AVX2 path is selected.
int finch_winograd_weight_transform(const float *w, long plane, float *u, long begin, long end);
/// Winograd F(2×2, 3×3) input transform of one input plane [h, w] with padding (pt, pl), onto
/// th × tw tiles: dst[ξ·stride + t] = (Bᵀ·d·B)[ξ] for tile t = ty·tw + tx (see WinogradConv.swift).
/// Bit-equal to the Swift kernel. Returns 0 without touching anything when neither the AVX-512 nor
/// the AVX2 path is selected.
int finch_winograd_input_transform(const float *plane, long h, long w, long pt, long pl, long th, long tw,
                                   float *dst, long stride);
/// The weight-gradient transform of one output-gradient plane [ho, wo]: dst[ξ·stride + t] =
/// (A·dY·Aᵀ)[ξ] for the 2×2 block of tile t, zero past odd edges. Bit-equal to the Swift kernel.
/// Returns 0 when neither the AVX-512 nor the AVX2 path is selected.
int finch_winograd_gradient_transform(const float *plane, long ho, long wo, long th, long tw, float *dst,
                                      long stride);
/// The output transform of one output plane [ho, wo]: out[2ty + a, 2tx + b] = (Aᵀ·M·A)[a, b] + bias,
/// M[ξ] = src[ξ·stride + t], clipped at odd edges. Returns 0 when neither the AVX-512 nor the AVX2 path is selected.
int finch_winograd_output_transform(const float *src, long stride, long th, long tw, long ho, long wo,
                                    float bias, float *out);


#endif
