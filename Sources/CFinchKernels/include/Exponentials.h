// Exponential, SiLU and sigmoid over buffers, on the generic, AVX2 or AVX-512 path (Exponentials.c).

#ifndef FINCH_EXPONENTIALS_H
#define FINCH_EXPONENTIALS_H

#include <stddef.h>
#include <stdint.h>

/// dst[i] = exp(src[i] − shift). src and dst may be the same buffer.
void finch_exp_shifted(const float *src, float *dst, size_t n, float shift);
/// dst[i] = x / (1 + exp(−x)).
void finch_silu(const float *src, float *dst, size_t n);
/// dst[i] = 1 / (1 + exp(−x)).
void finch_sigmoid(const float *src, float *dst, size_t n);
/// dst[i] = g·s·(1 + x·(1 − s)) with s = sigmoid(x): SiLU's derivative times the upstream gradient.
void finch_silu_backward(const float *g, const float *x, float *dst, size_t n);

#endif
