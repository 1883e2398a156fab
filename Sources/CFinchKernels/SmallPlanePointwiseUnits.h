// The unit loop of the small-plane 1×1 convolution, written once for both vector widths: the file
// that includes this defines INLINE (its target attribute), LANES (floats per vector), ROWS(v) (output
// channels per block for v vectors, a constant expression), MAX_VECTORS (vectors per block at most:
// 2 or 4), BLOCK (its register-blocked kernel, called with rows and vectors as constants so its loops
// unroll) and GROUP_FLOATS (below).
//
// Units go by groups of samples whose inputs fit in GROUP_FLOATS floats (0: one group), block-major
// within a group (unit = group · blocks · G + block · size + sample in the group, G samples a group
// and size those of this group: the last may be short), so a thread's run of units repacks the
// weights only when the block changes and can read a block's inputs from cache.

#ifndef FINCH_SMALL_PLANE_POINTWISE_UNITS_H
#define FINCH_SMALL_PLANE_POINTWISE_UNITS_H

// Samples per group: as many as fit in `budget` input floats (at least one), or the whole batch for 0.
static inline long pointwise_group_samples(long n, long c, long hw, long budget) {
    long g = budget > 0 ? budget / (c * hw > 0 ? c * hw : 1) : n;
    return g < 1 ? 1 : (g > n ? (n > 0 ? n : 1) : g);
}

INLINE void pointwise_units(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                            long cout, long hw, long unit_begin, long unit_end, float *packed) {
    const long vectors_total = (hw + LANES - 1) / LANES;
    const long vectors = vectors_total < MAX_VECTORS ? vectors_total : MAX_VECTORS;
    const long rows = ROWS(vectors), blocks = (cout + rows - 1) / rows;
    const long per_group = pointwise_group_samples(n, c, hw, GROUP_FLOATS);
    long loaded = -1;
    for (long u = unit_begin; u < unit_end; u++) {
        const long group = u / (blocks * per_group), first = group * per_group, within = u - first * blocks;
        const long size = n - first < per_group ? n - first : per_group;
        const long s = first + within % size, block = within / size, co0 = block * rows;
        long used = cout - co0 < rows ? cout - co0 : rows;
        if (block != loaded) {
            // [c][rows], zero past the last output channel; read along the weights' rows.
            for (long k = 0; k < rows; k++) {
                const float *wk = weight + (co0 + k) * c;
                if (k < used)
                    for (long ci = 0; ci < c; ci++) packed[ci * rows + k] = wk[ci];
                else
                    for (long ci = 0; ci < c; ci++) packed[ci * rows + k] = 0.0f;
            }
            loaded = block;
        }
        const float *xs = x + s * c * hw;
        float *ys = out + s * cout * hw;
        for (long p0 = 0; p0 < hw; p0 += LANES * vectors) {
            switch (vectors) {
            case 1: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(1), 1, used); break;
#if MAX_VECTORS > 2
            case 2: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(2), 2, used); break;
            case 3: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(3), 3, used); break;
#endif
            default: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(MAX_VECTORS), MAX_VECTORS, used); break;
            }
        }
    }
}

#endif
