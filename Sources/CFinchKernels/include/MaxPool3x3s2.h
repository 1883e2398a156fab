// 3×3 stride-2 max pooling on AVX-512 (MaxPool3x3s2.c) or AVX2 (MaxPool3x3s2AVX2.c).

#ifndef FINCH_MAX_POOL_3X3S2_H
#define FINCH_MAX_POOL_3X3S2_H

#include <stddef.h>
#include <stdint.h>

/// 3×3 max pooling with stride 2 and dilation 1 over one [h, w] plane into [ho, wo], top/left
/// padding pt, pl (padding never wins): the same comparisons in the same
/// order as the Swift kernel (a greater value or a NaN replaces the held one), and when `indices`
/// is not NULL the position in the plane of each output's value (before any comparison, the
/// window's first element inside the plane). Returns 0 without touching anything when neither
/// the AVX-512 nor the AVX2 path is selected.
int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices);

#endif
