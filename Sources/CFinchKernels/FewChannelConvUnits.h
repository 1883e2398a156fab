// What a unit of the few-channel convolution is, written once for the AVX-512 and AVX2 forms
// (FewChannelConv.c, FewChannelConvAVX2.c): unit = (sample · ⌈cout / 16⌉ + block) · ho + output row,
// with the block's sixteen output channels' weights packed as [tap][16] (zero past cout) and their
// bias after them, in the scratch finch_few_channel_conv_scratch counts.

#ifndef FINCH_FEW_CHANNEL_CONV_UNITS_H
#define FINCH_FEW_CHANNEL_CONV_UNITS_H

struct few_channel_unit {
    long s, oh, co0;
    /// Output channels of the block that exist (sixteen but in the last block).
    long lanes_co;
};

/// Unit u of geometry g; packs its block into wt and bt unless *packed already names it.
static inline struct few_channel_unit few_channel_unit(const float *weight, const float *bias, const long *g, long u,
                                                       float *wt, float *bt, long *packed) {
    const long c = g[1], cout = g[4], kh = g[5], kw = g[6], ho = g[11];
    const long taps = c * kh * kw, blocks = (cout + 15) / 16;
    long block = (u / ho) % blocks, co0 = block * 16;
    struct few_channel_unit unit = {u / (ho * blocks), u % ho, co0, cout - co0 < 16 ? cout - co0 : 16};
    if (block != *packed) {
        for (long t = 0; t < taps; t++)
            for (long k = 0; k < 16; k++) wt[t * 16 + k] = k < unit.lanes_co ? weight[(co0 + k) * taps + t] : 0.0f;
        for (long k = 0; k < 16; k++) bt[k] = bias && k < unit.lanes_co ? bias[co0 + k] : 0.0f;
        *packed = block;
    }
    return unit;
}

/// Row oh·sh − pt + i of input channel ci of sample s: the row tap row i of output row oh reads, or
/// NULL where that is padding (the tap then adds nothing).
static inline const float *few_channel_row(const float *x, const long *g, long s, long ci, long oh, long i) {
    const long c = g[1], h = g[2], w = g[3], sh = g[7], pt = g[9];
    const long r = oh * sh - pt + i;
    return r < 0 || r >= h ? (const float *)0 : x + ((s * c + ci) * h + r) * w;
}

#endif
