// 1×1 convolution on small planes on AVX-512 and AVX2 (SmallPlanePointwise.c).

#ifndef FINCH_SMALL_PLANE_POINTWISE_H
#define FINCH_SMALL_PLANE_POINTWISE_H

#include <stddef.h>
#include <stdint.h>

/// 1×1 convolution (groups 1) of x [n, c, hw] into out [n, cout, hw] for units unit_begin..<unit_end of
/// finch_pointwise_small_units(n, cout, hw), each one block of output channels for one sample.
/// For small planes (hw from 16 to a few hundred); scratch holds 16·c floats. Returns 0 on the
/// generic path.
int finch_pointwise_small(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                          long cout, long hw, long unit_begin, long unit_end, float *scratch);
long finch_pointwise_small_units(long n, long cout, long hw);

#endif
