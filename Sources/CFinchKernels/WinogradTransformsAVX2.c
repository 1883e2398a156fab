// Winograd F(2×2, 3×3) transforms on AVX2: the operations and order of WinogradTransforms.c (and
// so of the Swift kernels where those are bit-equal), eight tiles per vector. Lane k is tile t0 + k
// of one plane, tiles numbered row by row; rows of 4 tiles (8×8 planes) take two rows per vector.
// Edges and padding are masked loads and stores: nothing outside the plane is read or written.

#include "KernelsAVX2.h"
#include "KernelSupport.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

INLINE __m256i first8(long count) { return finch_avx2_span(0, count, 8); }

// Stores the lanes under keep: plainly when all eight are (masked stores are microcoded and slow on
// the AVX2-only AMD cores).
INLINE void put(float *p, __m256i keep, __m256 v) {
    if (_mm256_testc_si256(keep, _mm256_set1_epi32(-1))) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, keep, v);
}

static inline long rows_per_vector8(long tw) { return tw == 4 ? 2 : 1; }

// The even and odd elements of the sixteen floats lo ‖ hi.
INLINE void deinterleave(__m256 lo, __m256 hi, __m256 *even, __m256 *odd) {
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}

// Masked load of eight floats at row + c; masked lanes are not read (so c may start before the row).
INLINE __m256 load_span(const float *row, long c, long w, long count, int inside) {
    if (!inside) return _mm256_setzero_ps();
    __m256i m = finch_avx2_span(c, w, count);
    if (_mm256_testz_si256(m, m)) return _mm256_setzero_ps();
    return _mm256_maskload_ps((const float *)((const char *)row + c * (long)sizeof(float)), m);
}

// Tile columns o and o + 1 of the vector's eight tiles, from input row offset i of each covered row of tiles.
INLINE void tile_columns(const float *plane, long h, long w, long pt, long pl, long ty, long th, long tx, long rows,
                         long i, long o, __m256 *first, __m256 *second) {
    __m256 lo, hi;
    if (rows == 1) {
        long r = 2 * ty - pt + i, c = 2 * tx + o - pl;
        int in = r >= 0 && r < h;
        const float *src = in ? plane + r * w : plane;
        lo = load_span(src, c, w, 8, in);
        hi = load_span(src, c + 8, w, 8, in);
    } else {
        // Rows of four tiles: eight floats of row of tiles ty, then eight of ty + 1.
        long c = o - pl, r0 = 2 * ty - pt + i, r1 = 2 * (ty + 1) - pt + i;
        int in0 = r0 >= 0 && r0 < h, in1 = ty + 1 < th && r1 >= 0 && r1 < h;
        lo = load_span(in0 ? plane + r0 * w : plane, c, w, 8, in0);
        hi = load_span(in1 ? plane + r1 * w : plane, c, w, 8, in1);
    }
    deinterleave(lo, hi, first, second);
}

typedef struct { __m256 v[4]; } quad;

INLINE quad quad_sub(quad a, quad b) {
    return (quad){{_mm256_sub_ps(a.v[0], b.v[0]), _mm256_sub_ps(a.v[1], b.v[1]), _mm256_sub_ps(a.v[2], b.v[2]),
                   _mm256_sub_ps(a.v[3], b.v[3])}};
}

INLINE quad quad_add(quad a, quad b) {
    return (quad){{_mm256_add_ps(a.v[0], b.v[0]), _mm256_add_ps(a.v[1], b.v[1]), _mm256_add_ps(a.v[2], b.v[2]),
                   _mm256_add_ps(a.v[3], b.v[3])}};
}

INLINE quad tile_row(const float *plane, long h, long w, long pt, long pl, long ty, long th, long tx, long rows,
                     long i) {
    quad q;
    tile_columns(plane, h, w, pt, pl, ty, th, tx, rows, i, 0, &q.v[0], &q.v[1]);
    tile_columns(plane, h, w, pt, pl, ty, th, tx, rows, i, 2, &q.v[2], &q.v[3]);
    return q;
}

INLINE void store_row(float *base, long stride, __m256i keep, quad r) {
    put(base, keep, _mm256_sub_ps(r.v[0], r.v[2]));
    put(base + stride, keep, _mm256_add_ps(r.v[1], r.v[2]));
    put(base + 2 * stride, keep, _mm256_sub_ps(r.v[2], r.v[1]));
    put(base + 3 * stride, keep, _mm256_sub_ps(r.v[1], r.v[3]));
}

// The first tile of the vector at (ty, tx) and the lanes that hold tiles of the plane.
INLINE __m256i tile_lanes(long ty, long tx, long th, long tw, long rows, long *t0) {
    *t0 = ty * tw + tx;
    return first8(rows == 1 ? tw - tx : th * tw - *t0);
}

INLINE void input_rows(const float *plane, long h, long w, long pt, long pl, long th, long tw, float *dst,
                       long stride, const long rows) {
    for (long ty = 0; ty < th; ty += rows) {
        for (long tx = 0; tx < (rows == 1 ? tw : 1); tx += 8) {
            long t0;
            __m256i keep = tile_lanes(ty, tx, th, tw, rows, &t0);
            quad d0 = tile_row(plane, h, w, pt, pl, ty, th, tx, rows, 0);
            quad d1 = tile_row(plane, h, w, pt, pl, ty, th, tx, rows, 1);
            quad d2 = tile_row(plane, h, w, pt, pl, ty, th, tx, rows, 2);
            quad d3 = tile_row(plane, h, w, pt, pl, ty, th, tx, rows, 3);
            float *base = dst + t0;
            store_row(base, stride, keep, quad_sub(d0, d2));
            store_row(base + 4 * stride, stride, keep, quad_add(d1, d2));
            store_row(base + 8 * stride, stride, keep, quad_sub(d2, d1));
            store_row(base + 12 * stride, stride, keep, quad_sub(d1, d3));
        }
    }
}

TARGET void finch_winograd_input_transform_avx2(const float *plane, long h, long w, long pt, long pl, long th,
                                                long tw, float *dst, long stride) {
    if (rows_per_vector8(tw) == 2) input_rows(plane, h, w, pt, pl, th, tw, dst, stride, 2);
    else input_rows(plane, h, w, pt, pl, th, tw, dst, stride, 1);
}

// −v by flipping the sign bit, as Swift's prefix minus does.
INLINE __m256 negate(__m256 v) { return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); }

INLINE void gradient_rows(const float *plane, long ho, long wo, long th, long tw, float *dst, long stride,
                          const long rows) {
    for (long ty = 0; ty < th; ty += rows) {
        for (long tx = 0; tx < (rows == 1 ? tw : 1); tx += 8) {
            long t0;
            __m256i keep = tile_lanes(ty, tx, th, tw, rows, &t0);
            __m256 e0, o0, e1, o1;
            tile_columns(plane, ho, wo, 0, 0, ty, th, tx, rows, 0, 0, &e0, &o0);
            tile_columns(plane, ho, wo, 0, 0, ty, th, tx, rows, 1, 0, &e1, &o1);
            __m256 c0[4] = {e0, _mm256_add_ps(e0, e1), _mm256_sub_ps(e0, e1), negate(e1)};
            __m256 c1[4] = {o0, _mm256_add_ps(o0, o1), _mm256_sub_ps(o0, o1), negate(o1)};
            for (long i = 0; i < 4; i++) {
                float *base = dst + 4 * i * stride + t0;
                put(base, keep, c0[i]);
                put(base + stride, keep, _mm256_add_ps(c0[i], c1[i]));
                put(base + 2 * stride, keep, _mm256_sub_ps(c0[i], c1[i]));
                put(base + 3 * stride, keep, negate(c1[i]));
            }
        }
    }
}

TARGET void finch_winograd_gradient_transform_avx2(const float *plane, long ho, long wo, long th, long tw,
                                                   float *dst, long stride) {
    if (rows_per_vector8(tw) == 2) gradient_rows(plane, ho, wo, th, tw, dst, stride, 2);
    else gradient_rows(plane, ho, wo, th, tw, dst, stride, 1);
}

// Writes the eight floats v to dst, columns column + l ≥ limit left alone.
INLINE void store_span(float *dst, __m256 v, long column, long limit) {
    __m256i m = finch_avx2_span(column, limit, 8);
    if (!_mm256_testz_si256(m, m)) put(dst, m, v);
}

INLINE void output_rows(const float *src, long stride, long th, long tw, long ho, long wo, float bias, float *out,
                        const long rows) {
    const __m256 b = _mm256_set1_ps(bias);
    for (long ty = 0; ty < th; ty += rows) {
        for (long tx = 0; tx < (rows == 1 ? tw : 1); tx += 8) {
            long t0;
            __m256i keep = tile_lanes(ty, tx, th, tw, rows, &t0);
            __m256 q[16];
            for (long xi = 0; xi < 16; xi++) q[xi] = _mm256_maskload_ps(src + xi * stride + t0, keep);
            __m256 r0[4], r1[4];
            for (long i = 0; i < 4; i++) {
                r0[i] = _mm256_add_ps(_mm256_add_ps(q[4 * i], q[4 * i + 1]), q[4 * i + 2]);
                r1[i] = _mm256_sub_ps(_mm256_sub_ps(q[4 * i + 1], q[4 * i + 2]), q[4 * i + 3]);
            }
            __m256 y00 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r0[0], r0[1]), r0[2]), b);
            __m256 y01 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r1[0], r1[1]), r1[2]), b);
            __m256 y10 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r0[1], r0[2]), r0[3]), b);
            __m256 y11 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r1[1], r1[2]), r1[3]), b);
            // Interleaved: output columns of tiles 0–3 in part 0, of tiles 4–7 in part 1 (the
            // second row of tiles when a vector covers two).
            __m256 tl = _mm256_unpacklo_ps(y00, y01), th_ = _mm256_unpackhi_ps(y00, y01);
            __m256 bl = _mm256_unpacklo_ps(y10, y11), bh = _mm256_unpackhi_ps(y10, y11);
            __m256 top[2] = {_mm256_permute2f128_ps(tl, th_, 0x20), _mm256_permute2f128_ps(tl, th_, 0x31)};
            __m256 bottom[2] = {_mm256_permute2f128_ps(bl, bh, 0x20), _mm256_permute2f128_ps(bl, bh, 0x31)};
            for (long s = 0; s < 2; s++) {
                long g = rows == 1 ? 0 : s;
                if (ty + g >= th) break;
                long column = 2 * tx + (rows == 1 ? 8 * s : 0), oy = 2 * (ty + g);
                float *row = out + oy * wo + column;
                store_span(row, top[s], column, wo);
                if (oy + 1 < ho) store_span(row + wo, bottom[s], column, wo);
            }
        }
    }
}

TARGET void finch_winograd_output_transform_avx2(const float *src, long stride, long th, long tw, long ho, long wo,
                                                 float bias, float *out) {
    if (rows_per_vector8(tw) == 2) output_rows(src, stride, th, tw, ho, wo, bias, out, 2);
    else output_rows(src, stride, th, tw, ho, wo, bias, out, 1);
}

TARGET void finch_winograd_weight_transform_avx2(const float *w, long plane, float *u, long begin, long end) {
    const __m256i offsets = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256 half = _mm256_set1_ps(0.5f);
    for (long p = begin; p < end; p += 8) {
        __m256i keep = first8(end - p);
        __m256 g[9];
        for (long k = 0; k < 9; k++)
            g[k] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), w + p * 9 + k, offsets, _mm256_castsi256_ps(keep), 4);
        __m256 t[4][3];
        for (long j = 0; j < 3; j++) {
            t[0][j] = g[j];
            t[1][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(g[j], g[3 + j]), g[6 + j]));
            t[2][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(g[j], g[3 + j]), g[6 + j]));
            t[3][j] = g[6 + j];
        }
        for (long i = 0; i < 4; i++) {
            float *row = u + 4 * i * plane + p;
            put(row, keep, t[i][0]);
            put(row + plane, keep, _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(t[i][0], t[i][1]), t[i][2])));
            put(row + 2 * plane, keep, _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(t[i][0], t[i][1]), t[i][2])));
            put(row + 3 * plane, keep, t[i][2]);
        }
    }
}
#endif
