// Training-mode BatchNorm's sums and input gradient on every kernel path (BatchNormTraining.c).

#ifndef FINCH_BATCH_NORM_TRAINING_H
#define FINCH_BATCH_NORM_TRAINING_H

#include <stddef.h>
#include <stdint.h>

/// out[0] = Σ(a − sa), out[1] = Σ(a − sa)·(b − sb) over n values (Float lanes; callers add planes
/// in Double): training BatchNorm's mean and variance of a plane (a = b = x) and its backward's
/// Σg and Σg·(x − mean) (a = g, sa = 0, b = x, sb = mean). Products unrounded: FMA over thirty-two
/// Float partial sums on AVX-512, Double on AVX2 and generic.
void finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out);

/// dx = a·(g − mean_g − (x − mean)·k), BatchNorm's training-mode input gradient for one plane
/// (a = γ·invstd, mean_g = mean of g, k = mean of g·(x − mean) · invstd²). dx may be g.
void finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                    float mean, float k);

#endif
