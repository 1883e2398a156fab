// Winograd F(4×4, 3×3) transforms on AVX-512: weights (G·g·Gᵀ), input (Bᵀ·d·B), output (Aᵀ·M·A),
// output gradient (A·dY·Aᵀ) and weight gradient (Gᵀ·dU·G) (see WinogradConv.swift for the layouts).
//
// Lane k of a vector is element f0 + k of a transformed matrix's row, f = sample · tiles + tile, so
// small planes (an 8×8 plane has four tiles) still fill the vector with the tiles of four samples.
// Tiles of one plane start every fourth column, which no register permute of two vectors spans, so
// each tile element is gathered, masked where it falls in the padding: 36 gathers per sixteen tiles
// (about 6 cycles each here). Copying the planes zero-padded first, to gather without masks, cost
// more in the copy than it saved.

#include "WinogradF4Transforms.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define V __m512
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define FNMA _mm512_fnmadd_ps

#define INLINE __attribute__((target("avx512f"), always_inline)) static inline
#include "WinogradF4Columns.h"

// Each lane's tile position for the sixteen elements f0 … f0 + 15 of f = sample · tiles + ty · tw + tx:
// the top-left corner's row and column in its plane (padding included, so possibly negative) and
// its offset from the first plane. The walk carries (s, ty, tx) from one vector to the next.
typedef struct { long s, ty, tx; } tile_walk;

__attribute__((target("avx512f"), always_inline))
static inline void tile_corners(tile_walk *walk, long lanes, long th, long tw, long sample_stride, long w, long pt,
                                long pl, __m512i *top, __m512i *left, __m512i *base) {
    int t[16], l[16], o[16];
    for (long k = 0; k < 16; k++) {
        if (k >= lanes) {
            t[k] = l[k] = o[k] = 0;
            continue;
        }
        t[k] = (int)(4 * walk->ty - pt);
        l[k] = (int)(4 * walk->tx - pl);
        o[k] = (int)(walk->s * sample_stride + (long)t[k] * w + l[k]);
        if (++walk->tx == tw) {
            walk->tx = 0;
            if (++walk->ty == th) {
                walk->ty = 0;
                walk->s++;
            }
        }
    }
    *top = _mm512_loadu_si512(t);
    *left = _mm512_loadu_si512(l);
    *base = _mm512_loadu_si512(o);
}

// Lanes of `keep` whose value v + offset lies in [0, limit): a tile row or column inside the plane.
__attribute__((target("avx512f"), always_inline))
static inline __mmask16 inside(__mmask16 keep, __m512i v, long offset, long limit) {
    __m512i at = _mm512_add_epi32(v, _mm512_set1_epi32((int)offset));
    return _mm512_mask_cmpge_epi32_mask(keep, at, _mm512_setzero_si512()) &
           _mm512_cmplt_epi32_mask(at, _mm512_set1_epi32((int)limit));
}

// The transformed block of sixteen tiles f0 … f0 + 15: for the input (size 6) Bᵀ·d·B of each 6×6
// block, for the output gradient (size 4) A·dY·Aᵀ of each 4×4 block, both to 6×6. Elements are
// gathered straight from the planes, masked where they fall outside (those read nothing and count
// as zero). Rows are transformed first, then the columns of the result.
__attribute__((target("avx512f"), always_inline))
static inline void gather_transform(const float *x, long h, long w, __mmask16 keep, __m512i top, __m512i left,
                                    __m512i base, float *dst, long stride, long f0, const long size) {
    __mmask16 in_row[6], in_col[6];
    for (long i = 0; i < size; i++) {
        in_row[i] = inside(keep, top, i, h);
        in_col[i] = inside(keep, left, i, w);
    }
    V t[6][6];
    for (long i = 0; i < size; i++) {
        V d[6];
        for (long j = 0; j < size; j++)
            d[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in_row[i] & in_col[j], base, x + i * w + j, 4);
        if (size == 6) bt6(d, t[i]); else a6(d, t[i]);
    }
    for (long j = 0; j < 6; j++) {
        V column[6], out[6];
        for (long i = 0; i < size; i++) column[i] = t[i][j];
        if (size == 6) bt6(column, out); else a6(column, out);
        for (long k = 0; k < 6; k++) _mm512_mask_storeu_ps(dst + (6 * k + j) * stride + f0, keep, out[k]);
    }
}

__attribute__((target("avx512f")))
static void input_transform(const float *x, long sample_stride, long samples, long h, long w, long pt, long pl,
                            long th, long tw, float *dst, long stride) {
    long total = samples * th * tw;
    tile_walk walk = {0, 0, 0};
    for (long f0 = 0; f0 < total; f0 += 16) {
        __mmask16 keep = first_lanes(total - f0);
        __m512i top, left, base;
        tile_corners(&walk, total - f0, th, tw, sample_stride, w, pt, pl, &top, &left, &base);
        gather_transform(x, h, w, keep, top, left, base, dst, stride, f0, 6);
    }
}

__attribute__((target("avx512f")))
static void gradient_transform(const float *x, long sample_stride, long samples, long h, long w, long th, long tw,
                               float *dst, long stride) {
    long total = samples * th * tw;
    tile_walk walk = {0, 0, 0};
    for (long f0 = 0; f0 < total; f0 += 16) {
        __mmask16 keep = first_lanes(total - f0);
        __m512i top, left, base;
        tile_corners(&walk, total - f0, th, tw, sample_stride, w, 0, 0, &top, &left, &base);
        gather_transform(x, h, w, keep, top, left, base, dst, stride, f0, 4);
    }
}

__attribute__((target("avx512f")))
static void output_transform(const float *src, long stride, long samples, long th, long tw, long ho, long wo,
                             long sample_stride, float bias, float *out) {
    long total = samples * th * tw;
    const __m512i pairs_low = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i pairs_high = _mm512_add_epi32(pairs_low, _mm512_set1_epi32(8));
    const V b = SET1(bias);
    long s = 0, ty = 0, tx = 0;
    float rows[4][16] __attribute__((aligned(64)));
    for (long f0 = 0; f0 < total; f0 += 16) {
        __mmask16 keep = first_lanes(total - f0);
        V r[6][4];
        for (long k = 0; k < 6; k++) {
            V m[6];
            for (long j = 0; j < 6; j++) m[j] = _mm512_maskz_loadu_ps(keep, src + (6 * k + j) * stride + f0);
            at4(m, r[k]);
        }
        V y[4][4];
        for (long c = 0; c < 4; c++) {
            V column[6] = {r[0][c], r[1][c], r[2][c], r[3][c], r[4][c], r[5][c]}, o[4];
            at4(column, o);
            for (long a = 0; a < 4; a++) y[a][c] = ADD(o[a], b);
        }
        long lanes = total - f0 < 16 ? total - f0 : 16;
        long ls = s, lty = ty, ltx = tx;
        for (long a = 0; a < 4; a++) {
            // Transpose the four column vectors of output row a into each tile's four floats: after
            // the unpacks and shuffles, 128-bit block q of q_j holds tile 4q + j; the permutes put
            // tiles 0–15 in order.
            V u0 = _mm512_unpacklo_ps(y[a][0], y[a][1]), u1 = _mm512_unpackhi_ps(y[a][0], y[a][1]);
            V u2 = _mm512_unpacklo_ps(y[a][2], y[a][3]), u3 = _mm512_unpackhi_ps(y[a][2], y[a][3]);
            V q0 = _mm512_shuffle_ps(u0, u2, 0x44), q1 = _mm512_shuffle_ps(u0, u2, 0xEE);
            V q2 = _mm512_shuffle_ps(u1, u3, 0x44), q3 = _mm512_shuffle_ps(u1, u3, 0xEE);
            V p01 = _mm512_permutex2var_ps(q0, pairs_low, q1), p23 = _mm512_permutex2var_ps(q2, pairs_low, q3);
            V p01h = _mm512_permutex2var_ps(q0, pairs_high, q1);
            V p23h = _mm512_permutex2var_ps(q2, pairs_high, q3);
            _mm512_store_ps(rows[0], _mm512_shuffle_f32x4(p01, p23, 0x44));
            _mm512_store_ps(rows[1], _mm512_shuffle_f32x4(p01, p23, 0xEE));
            _mm512_store_ps(rows[2], _mm512_shuffle_f32x4(p01h, p23h, 0x44));
            _mm512_store_ps(rows[3], _mm512_shuffle_f32x4(p01h, p23h, 0xEE));
            s = ls, ty = lty, tx = ltx;
            for (long k = 0; k < lanes; k++) {
                long oy = 4 * ty + a, ox = 4 * tx;
                if (oy < ho) {
                    const float *v = rows[k / 4] + 4 * (k % 4);
                    float *o = out + s * sample_stride + oy * wo + ox;
                    if (ox + 4 <= wo) {
                        _mm_storeu_ps(o, _mm_load_ps(v));
                    } else {
                        for (long c = 0; ox + c < wo; c++) o[c] = v[c];
                    }
                }
                if (++tx == tw) {
                    tx = 0;
                    if (++ty == th) {
                        ty = 0;
                        s++;
                    }
                }
            }
        }
    }
}

// U[ξ][p] = (G·g·Gᵀ)[ξ] for filters begin..<end, sixteen per vector, gathered nine floats apart.
__attribute__((target("avx512f")))
static void weight_transform(const float *w, long plane, float *u, long begin, long end) {
    const __m512i offsets = filter_offsets();
    for (long p = begin; p < end; p += 16) {
        __mmask16 keep = first_lanes(end - p);
        V t[3][6];
        for (long i = 0; i < 3; i++) {
            V g[3];
            for (long j = 0; j < 3; j++)
                g[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), keep, offsets, w + p * 9 + 3 * i + j, 4);
            g6(g, t[i]);
        }
        for (long j = 0; j < 6; j++) {
            V column[3] = {t[0][j], t[1][j], t[2][j]}, out[6];
            g6(column, out);
            for (long k = 0; k < 6; k++) _mm512_mask_storeu_ps(u + (6 * k + j) * plane + p, keep, out[k]);
        }
    }
}

// dW[p] = Gᵀ·dU[p]·G for filters begin..<end, scattered nine floats apart.
__attribute__((target("avx512f")))
static void weight_gradient(const float *du, long plane, float *dw, long begin, long end) {
    const __m512i offsets = filter_offsets();
    for (long p = begin; p < end; p += 16) {
        __mmask16 keep = first_lanes(end - p);
        V t[6][3];
        for (long k = 0; k < 6; k++) {
            V row[6];
            for (long j = 0; j < 6; j++) row[j] = _mm512_maskz_loadu_ps(keep, du + (6 * k + j) * plane + p);
            gt3(row, t[k]);
        }
        for (long q = 0; q < 3; q++) {
            V column[6] = {t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]}, out[3];
            gt3(column, out);
            for (long i = 0; i < 3; i++) _mm512_mask_i32scatter_ps(dw + p * 9 + 3 * i + q, keep, offsets, out[i], 4);
        }
    }
}

int finch_winograd4_weight_transform(const float *w, long plane, float *u, long begin, long end) {
    if (finch_avx2_selected()) {
        finch_winograd4_weight_transform_avx2(w, plane, u, begin, end);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    weight_transform(w, plane, u, begin, end);
    return 1;
}

int finch_winograd4_weight_gradient(const float *du, long plane, float *dw, long begin, long end) {
    if (finch_avx2_selected()) {
        finch_winograd4_weight_gradient_avx2(du, plane, dw, begin, end);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    weight_gradient(du, plane, dw, begin, end);
    return 1;
}

int finch_winograd4_input_transform(const float *x, long sample_stride, long samples, long h, long w, long pt,
                                    long pl, long th, long tw, float *dst, long stride) {
    if (finch_avx2_selected()) {
        finch_winograd4_input_transform_avx2(x, sample_stride, samples, h, w, pt, pl, th, tw, dst, stride);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    input_transform(x, sample_stride, samples, h, w, pt, pl, th, tw, dst, stride);
    return 1;
}

int finch_winograd4_gradient_transform(const float *dy, long sample_stride, long samples, long ho, long wo, long th,
                                       long tw, float *dst, long stride) {
    if (finch_avx2_selected()) {
        finch_winograd4_gradient_transform_avx2(dy, sample_stride, samples, ho, wo, th, tw, dst, stride);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    gradient_transform(dy, sample_stride, samples, ho, wo, th, tw, dst, stride);
    return 1;
}

int finch_winograd4_output_transform(const float *src, long stride, long samples, long th, long tw, long ho, long wo,
                                     long sample_stride, float bias, float *out) {
    if (finch_avx2_selected()) {
        finch_winograd4_output_transform_avx2(src, stride, samples, th, tw, ho, wo, sample_stride, bias, out);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    output_transform(src, stride, samples, th, tw, ho, wo, sample_stride, bias, out);
    return 1;
}

#else
int finch_winograd4_weight_transform(const float *w, long plane, float *u, long begin, long end) {
    (void)w; (void)plane; (void)u; (void)begin; (void)end;
    return 0;
}

int finch_winograd4_weight_gradient(const float *du, long plane, float *dw, long begin, long end) {
    (void)du; (void)plane; (void)dw; (void)begin; (void)end;
    return 0;
}

int finch_winograd4_input_transform(const float *x, long sample_stride, long samples, long h, long w, long pt,
                                    long pl, long th, long tw, float *dst, long stride) {
    (void)x; (void)sample_stride; (void)samples; (void)h; (void)w; (void)pt; (void)pl; (void)th; (void)tw;
    (void)dst; (void)stride;
    return 0;
}

int finch_winograd4_gradient_transform(const float *dy, long sample_stride, long samples, long ho, long wo, long th,
                                       long tw, float *dst, long stride) {
    (void)dy; (void)sample_stride; (void)samples; (void)ho; (void)wo; (void)th; (void)tw; (void)dst; (void)stride;
    return 0;
}

int finch_winograd4_output_transform(const float *src, long stride, long samples, long th, long tw, long ho, long wo,
                                     long sample_stride, float bias, float *out) {
    (void)src; (void)stride; (void)samples; (void)th; (void)tw; (void)ho; (void)wo; (void)sample_stride; (void)bias;
    (void)out;
    return 0;
}
#endif
