// The unit loop of the small-plane 1×1 convolution, written once for both vector widths: the file
// that includes this defines INLINE (its target attribute), LANES (floats per vector), ROWS(v) (output
// channels per block for v vectors, a constant expression) and BLOCK (its register-blocked kernel,
// called with rows and vectors as constants so its loops unroll). Units are block-major (unit =
// block · n + sample), so a thread's run of units repacks the weights only when the block changes.

#ifndef FINCH_SMALL_PLANE_POINTWISE_UNITS_H
#define FINCH_SMALL_PLANE_POINTWISE_UNITS_H

INLINE void pointwise_units(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                            long cout, long hw, long unit_begin, long unit_end, float *packed) {
    const long vectors_total = (hw + LANES - 1) / LANES, vectors = vectors_total < 4 ? vectors_total : 4;
    const long rows = ROWS(vectors);
    long loaded = -1;
    for (long u = unit_begin; u < unit_end; u++) {
        long s = u % n, block = u / n, co0 = block * rows;
        long used = cout - co0 < rows ? cout - co0 : rows;
        if (block != loaded) {
            // [c][rows], zero past the last output channel.
            for (long ci = 0; ci < c; ci++)
                for (long k = 0; k < rows; k++) packed[ci * rows + k] = k < used ? weight[(co0 + k) * c + ci] : 0.0f;
            loaded = block;
        }
        const float *xs = x + s * c * hw;
        float *ys = out + s * cout * hw;
        for (long p0 = 0; p0 < hw; p0 += LANES * vectors) {
            switch (vectors) {
            case 1: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(1), 1, used); break;
            case 2: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(2), 2, used); break;
            case 3: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(3), 3, used); break;
            default: BLOCK(xs, packed, bias, ys, c, hw, co0, p0, ROWS(4), 4, used); break;
            }
        }
    }
}

#endif
