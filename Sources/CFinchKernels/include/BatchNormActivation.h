// Evaluation-mode BatchNorm and its activation on AVX-512 and AVX2 (BatchNormActivation.c).

#ifndef FINCH_BATCH_NORM_ACTIVATION_H
#define FINCH_BATCH_NORM_ACTIVATION_H

#include <stddef.h>
#include <stdint.h>

/// dst[i] = act((src[i] − mean)·scale + shift), the per-channel pass of evaluation-mode BatchNorm
/// with its activation: 0 identity, 1 relu, 2 relu6, 3 hardswish, 4 hardsigmoid, 5 silu, 6 sigmoid
/// (FusedActivation's order). Same operations in the same order as the Swift kernels (no FMA), so
/// results are identical, except silu and sigmoid, whose reciprocal is an estimate refined by one
/// Newton step on AVX-512 (a few units in the last place; on AVX2 they divide, as finch_silu and
/// finch_sigmoid there). Returns 0 without touching anything on the generic path.
int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation);

/// dst[i] = act(((x[i] − mean)·scale + shift) + r[i]): the end of a residual block (BatchNorm, the
/// shortcut r, the activation after the sum), with finch_affine_activation's activation codes and
/// the same operations as the Swift kernels. dst may be x (evaluation's epilogue, in place) or r
/// (a training rebuild over the shortcut's values). Returns 0 without touching anything on the
/// generic path.
int finch_residual_activation(const float *x, const float *r, float *dst, size_t n, float mean, float scale,
                              float shift, int activation);

/// dst[i] = g[i]·s·(1 + z·(1 − s)) with z = (x[i] − mean)·scale + shift and s = sigmoid(z): the
/// gradient to z of BatchNorm+SiLU, in one pass. The same bits as finch_affine_activation (identity)
/// into a buffer followed by finch_silu_backward on the same path. dst may be g. Returns 0 without
/// touching anything on the generic path.
int finch_affine_silu_backward(const float *g, const float *x, float *dst, size_t n, float mean, float scale,
                               float shift);

#endif
