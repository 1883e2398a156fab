// Depthwise convolution on AVX-512 (DepthwiseConvKernels.c); the per-plane kernels also on AVX2
// (DepthwiseConvKernelsAVX2.c, the same bits).

#ifndef FINCH_DEPTHWISE_CONV_KERNELS_H
#define FINCH_DEPTHWISE_CONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Depthwise convolution forward on channel tiles of sixteen lanes (AVX-512), for units
/// unit_begin..<unit_end, unit = block · n + sample with blocks of 16 channels (see
/// DepthwiseConvChannelTiles.swift). geometry = {n, c, h, w, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo};
/// scratch holds finch_depthwise_tiles16_scratch(geometry) floats, 64-byte aligned.
/// On AVX2 each unit runs as two halves of eight lanes with the Swift kernel's arithmetic (no FMA).
/// Returns 0 without touching anything on the generic path.
int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch);
long finch_depthwise_tiles16_scratch(const long *geometry);

/// Depthwise convolution forward for one (channel, sample) plane from its packed input rows: out
/// ([ho, wo]) = bias + the taps, with the same operations in the same order as the Swift rows kernel
/// (no FMA), so results are identical. geometry and taps as for finch_depthwise_backward_plane.
/// Returns 0 without touching anything when neither AVX-512 nor AVX2 is selected.
int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps);

/// The same for column stride 1 (geometry[12] = 1) from the unpacked input plane ([h, w]):
/// geometry as for finch_depthwise_backward_plane followed by {w, pl}. Identical results to
/// finch_depthwise_forward_plane. Returns 0 without touching anything when neither AVX-512 nor AVX2
/// is selected or the column stride is not 1.
int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry);

/// Depthwise convolution backward for one (channel, sample) plane on packed input rows (see
/// DepthwiseConv.swift): adds dy·x products into acc ([kh·kw, wo] partial sums, when acc is not
/// NULL) and the weight-scaled dy into the packed input gradient dpacked (when not NULL).
/// geometry = {kh, kw, sh, dh, dw, pt, h, ho, wo, packed row, padded row, edge, gather (sw = 1)};
/// taps[j] is tap j's offset in a packed row; dy_pad holds wo + 2·edge floats, zero outside the
/// middle. Returns 0 without touching anything when neither AVX-512 nor AVX2 is selected.
int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps);

#endif
