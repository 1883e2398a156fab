// Softmax over short contiguous rows on AVX-512 (SoftmaxRows.c) and AVX2 (SoftmaxRowsAVX2.c).

#ifndef FINCH_SOFTMAX_ROWS_H
#define FINCH_SOFTMAX_ROWS_H

#include <stddef.h>
#include <stdint.h>

/// Softmax (log_softmax 0) or log-softmax (1) of `rows` contiguous rows of r elements, with the
/// same exponential as finch_exp_shifted. Returns 0 without touching anything on the generic path.
int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax);

#endif
