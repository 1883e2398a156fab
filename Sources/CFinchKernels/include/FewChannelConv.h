// Direct convolution for few input channels on AVX-512 (FewChannelConv.c).

#ifndef FINCH_FEW_CHANNEL_CONV_H
#define FINCH_FEW_CHANNEL_CONV_H

#include <stddef.h>
#include <stdint.h>

/// Direct convolution for few input channels (groups 1, dilation 1, column stride 1 or 2), for
/// units unit_begin..<unit_end, unit = (sample · ⌈cout / 16⌉ + block) · ho + output row.
/// geometry = {n, c, h, w, cout, kh, kw, sh, sw, pt, pl, ho, wo}; scratch holds
/// finch_few_channel_conv_scratch(geometry) floats. Returns 0 when the CPU has no AVX-512.
int finch_few_channel_conv(const float *x, const float *weight, const float *bias, float *out, const long *geometry,
                           long unit_begin, long unit_end, float *scratch);
long finch_few_channel_conv_scratch(const long *geometry);

#endif
