// The column transforms of Winograd F(4×4, 3×3), written once for every vector width: the file that
// includes this defines V (the vector type), ADD, SUB, MUL, SET1, FMA, FNMA and INLINE (its target
// attribute), so the AVX-512 and AVX2 paths run the same operations in the same order (same bits).

#ifndef FINCH_WINOGRAD_F4_COLUMNS_H
#define FINCH_WINOGRAD_F4_COLUMNS_H

// The matrices are built for the interpolation points 0, ±⅔, ±3⁄2 and ∞, of the form {0, ±c, ±1⁄c}
// that Alam, Anderson, Barabasz and Gregg (2022) found to cancel in the transforms: against the float64
// direct convolution of a ResNet-like 3×3 layer, the float32 RMS error is 1.8× F(2×2, 3×3)'s where
// Lavin & Gray's 0, ±1, ±2 give 4.0× and the former 0, ±1, ½, −2 2.6× (Benchmarks/winograd_points.py);
// in Finch, 2.8–3.1× where the former points gave 4.2–4.4× (WinogradF4Tests.testRoundingAgainstDouble).
// Rows of Bᵀ are scaled to coprime integers and G carries the inverse scales; the paired points
// share even and odd halves, so the transforms take no more operations than before.

// Bᵀ·d for one column of six values: rows (36, 0, −97, 0, 36, 0), (0, 18, 27, −8, −12, 0),
// (0, −18, 27, 8, −12, 0), (0, −12, −8, 27, 18, 0), (0, 12, −8, −27, 18, 0), (0, 36, 0, −97, 0, 36).
// Each pair of rows for ±c shares its even and odd halves.
INLINE void bt6(const V d[6], V out[6]) {
    const V c8 = SET1(8.0f), c12 = SET1(12.0f), c18 = SET1(18.0f), c27 = SET1(27.0f), c36 = SET1(36.0f);
    const V c97 = SET1(97.0f);
    out[0] = FNMA(c97, d[2], MUL(c36, ADD(d[0], d[4])));
    V even = FNMA(c12, d[4], MUL(c27, d[2])), odd = FNMA(c8, d[3], MUL(c18, d[1]));
    out[1] = ADD(even, odd);
    out[2] = SUB(even, odd);
    even = FNMA(c8, d[2], MUL(c18, d[4]));
    odd = FNMA(c12, d[1], MUL(c27, d[3]));
    out[3] = ADD(even, odd);
    out[4] = SUB(even, odd);
    out[5] = FNMA(c97, d[3], MUL(c36, ADD(d[1], d[5])));
}

// Aᵀ·m for six values: rows (1, 1, 1, 1, 1, 0), (0, ⅔, −⅔, 3⁄2, −3⁄2, 0), (0, 4⁄9, 4⁄9, 9⁄4, 9⁄4, 0),
// (0, 8⁄27, −8⁄27, 27⁄8, −27⁄8, 1).
INLINE void at4(const V m[6], V out[4]) {
    V s1 = ADD(m[1], m[2]), d1 = SUB(m[1], m[2]), s3 = ADD(m[3], m[4]), d3 = SUB(m[3], m[4]);
    out[0] = ADD(ADD(m[0], s1), s3);
    out[1] = FMA(SET1(2.0f / 3.0f), d1, MUL(SET1(1.5f), d3));
    out[2] = FMA(SET1(4.0f / 9.0f), s1, MUL(SET1(2.25f), s3));
    out[3] = ADD(FMA(SET1(8.0f / 27.0f), d1, MUL(SET1(3.375f), d3)), m[5]);
}

// A·y for four values (the adjoint of at4): six outputs.
INLINE void a6(const V y[4], V out[6]) {
    V even = FMA(SET1(4.0f / 9.0f), y[2], y[0]), odd = FMA(SET1(8.0f / 27.0f), y[3], MUL(SET1(2.0f / 3.0f), y[1]));
    out[0] = y[0];
    out[1] = ADD(even, odd);
    out[2] = SUB(even, odd);
    even = FMA(SET1(2.25f), y[2], y[0]);
    odd = FMA(SET1(3.375f), y[3], MUL(SET1(1.5f), y[1]));
    out[3] = ADD(even, odd);
    out[4] = SUB(even, odd);
    out[5] = y[3];
}

// G·g for three values: rows (1⁄36, 0, 0), (27⁄520, 9⁄260, 3⁄130), (27⁄520, −9⁄260, 3⁄130),
// (4⁄585, 2⁄195, 1⁄65), (4⁄585, −2⁄195, 1⁄65), (0, 0, 1⁄36).
INLINE void g6(const V g[3], V out[6]) {
    out[0] = MUL(SET1(1.0f / 36.0f), g[0]);
    V even = FMA(SET1(3.0f / 130.0f), g[2], MUL(SET1(27.0f / 520.0f), g[0])), odd = MUL(SET1(9.0f / 260.0f), g[1]);
    out[1] = ADD(even, odd);
    out[2] = SUB(even, odd);
    even = FMA(SET1(1.0f / 65.0f), g[2], MUL(SET1(4.0f / 585.0f), g[0]));
    odd = MUL(SET1(2.0f / 195.0f), g[1]);
    out[3] = ADD(even, odd);
    out[4] = SUB(even, odd);
    out[5] = MUL(SET1(1.0f / 36.0f), g[2]);
}

// Gᵀ·u for six values (the adjoint of g6): three outputs.
INLINE void gt3(const V u[6], V out[3]) {
    V s12 = ADD(u[1], u[2]), d12 = SUB(u[1], u[2]), s34 = ADD(u[3], u[4]), d34 = SUB(u[3], u[4]);
    out[0] = FMA(SET1(1.0f / 36.0f), u[0], FMA(SET1(27.0f / 520.0f), s12, MUL(SET1(4.0f / 585.0f), s34)));
    out[1] = FMA(SET1(9.0f / 260.0f), d12, MUL(SET1(2.0f / 195.0f), d34));
    out[2] = FMA(SET1(1.0f / 36.0f), u[5], FMA(SET1(3.0f / 130.0f), s12, MUL(SET1(1.0f / 65.0f), s34)));
}

#endif
