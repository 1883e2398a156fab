// Winograd F(4×4, 3×3) transforms on AVX2 + FMA, for CPUs without AVX-512 (the AMD EPYCs users
// fine-tune on): the same column transforms as WinogradF4Transforms.c (WinogradF4Columns.h), eight tiles per
// vector instead of sixteen, so both paths give the same bits. AVX2 has masked gathers but no
// scatters and no mask registers: masks are lanes of all ones, and the weight gradient's scattered
// stores go through a small array.

#include "KernelsAVX2.h"
#include "KernelSupport.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define V __m256
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define FNMA _mm256_fnmadd_ps

#include "WinogradF4Columns.h"

// Lanes 0 ..< count set (all ones), the rest clear.
INLINE __m256i lanes8(long count) {
    long c = count < 0 ? 0 : (count > 8 ? 8 : count);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores the lanes under keep: plainly when all eight are (masked stores are microcoded and slow on
// the AVX2-only AMD cores).
INLINE void put(float *p, __m256i keep, V v) {
    if (_mm256_testc_si256(keep, _mm256_set1_epi32(-1))) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, keep, v);
}

typedef struct { long s, ty, tx; } tile_walk;

// Each lane's tile corner (row, column, offset from the first plane) for the next `lanes` tiles.
INLINE void tile_corners(tile_walk *walk, long lanes, long th, long tw, long sample_stride, long w, long pt, long pl,
                         __m256i *top, __m256i *left, __m256i *base) {
    int t[8], l[8], o[8];
    for (long k = 0; k < 8; k++) {
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
    *top = _mm256_loadu_si256((const __m256i *)t);
    *left = _mm256_loadu_si256((const __m256i *)l);
    *base = _mm256_loadu_si256((const __m256i *)o);
}

// Lanes of `keep` whose v + offset lies in [0, limit).
INLINE __m256i inside(__m256i keep, __m256i v, long offset, long limit) {
    __m256i at = _mm256_add_epi32(v, _mm256_set1_epi32((int)offset));
    __m256i nonnegative = _mm256_cmpgt_epi32(at, _mm256_set1_epi32(-1));
    __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)limit), at);
    return _mm256_and_si256(keep, _mm256_and_si256(nonnegative, below));
}

// The transformed block of eight tiles (input: Bᵀ·d·B of 6×6 blocks; output gradient: A·dY·Aᵀ of
// 4×4 blocks), rows first, then columns, masked gathers reading nothing outside the planes.
INLINE void gather_transform(const float *x, long h, long w, __m256i keep, __m256i top, __m256i left, __m256i base,
                             float *dst, long stride, long f0, const long size) {
    __m256i in_row[6], in_col[6];
    for (long i = 0; i < size; i++) {
        in_row[i] = inside(keep, top, i, h);
        in_col[i] = inside(keep, left, i, w);
    }
    V t[6][6];
    for (long i = 0; i < size; i++) {
        V d[6];
        for (long j = 0; j < size; j++)
            d[j] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), x + i * w + j, base,
                                            _mm256_castsi256_ps(_mm256_and_si256(in_row[i], in_col[j])), 4);
        if (size == 6) bt6(d, t[i]); else a6(d, t[i]);
    }
    for (long j = 0; j < 6; j++) {
        V column[6], out[6];
        for (long i = 0; i < size; i++) column[i] = t[i][j];
        if (size == 6) bt6(column, out); else a6(column, out);
        for (long k = 0; k < 6; k++) put(dst + (6 * k + j) * stride + f0, keep, out[k]);
    }
}

TARGET void finch_winograd4_input_transform_avx2(const float *x, long sample_stride, long samples, long h, long w,
                                                 long pt, long pl, long th, long tw, float *dst, long stride) {
    long total = samples * th * tw;
    tile_walk walk = {0, 0, 0};
    for (long f0 = 0; f0 < total; f0 += 8) {
        __m256i keep = lanes8(total - f0), top, left, base;
        tile_corners(&walk, total - f0, th, tw, sample_stride, w, pt, pl, &top, &left, &base);
        gather_transform(x, h, w, keep, top, left, base, dst, stride, f0, 6);
    }
}

TARGET void finch_winograd4_gradient_transform_avx2(const float *dy, long sample_stride, long samples, long ho,
                                                    long wo, long th, long tw, float *dst, long stride) {
    long total = samples * th * tw;
    tile_walk walk = {0, 0, 0};
    for (long f0 = 0; f0 < total; f0 += 8) {
        __m256i keep = lanes8(total - f0), top, left, base;
        tile_corners(&walk, total - f0, th, tw, sample_stride, wo, 0, 0, &top, &left, &base);
        gather_transform(dy, ho, wo, keep, top, left, base, dst, stride, f0, 4);
    }
}

TARGET void finch_winograd4_output_transform_avx2(const float *src, long stride, long samples, long th, long tw,
                                                  long ho, long wo, long sample_stride, float bias, float *out) {
    long total = samples * th * tw;
    const V b = SET1(bias);
    long s = 0, ty = 0, tx = 0;
    float rows[4][8] __attribute__((aligned(32)));
    for (long f0 = 0; f0 < total; f0 += 8) {
        __m256i keep = lanes8(total - f0);
        V r[6][4];
        for (long k = 0; k < 6; k++) {
            V m[6];
            for (long j = 0; j < 6; j++) m[j] = _mm256_maskload_ps(src + (6 * k + j) * stride + f0, keep);
            at4(m, r[k]);
        }
        V y[4][4];
        for (long c = 0; c < 4; c++) {
            V column[6] = {r[0][c], r[1][c], r[2][c], r[3][c], r[4][c], r[5][c]}, o[4];
            at4(column, o);
            for (long a = 0; a < 4; a++) y[a][c] = ADD(o[a], b);
        }
        long lanes = total - f0 < 8 ? total - f0 : 8;
        long ls = s, lty = ty, ltx = tx;
        for (long a = 0; a < 4; a++) {
            // 4×4 transposes in each 128-bit half: rows[j] holds tile j in its low half and tile
            // 4 + j in its high half.
            V u0 = _mm256_unpacklo_ps(y[a][0], y[a][1]), u1 = _mm256_unpackhi_ps(y[a][0], y[a][1]);
            V u2 = _mm256_unpacklo_ps(y[a][2], y[a][3]), u3 = _mm256_unpackhi_ps(y[a][2], y[a][3]);
            _mm256_store_ps(rows[0], _mm256_shuffle_ps(u0, u2, 0x44));
            _mm256_store_ps(rows[1], _mm256_shuffle_ps(u0, u2, 0xEE));
            _mm256_store_ps(rows[2], _mm256_shuffle_ps(u1, u3, 0x44));
            _mm256_store_ps(rows[3], _mm256_shuffle_ps(u1, u3, 0xEE));
            s = ls, ty = lty, tx = ltx;
            for (long k = 0; k < lanes; k++) {
                long oy = 4 * ty + a, ox = 4 * tx;
                if (oy < ho) {
                    const float *v = rows[k % 4] + 4 * (k / 4);
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

// 0, 9, …, 63: lane k's offset to filter k of eight consecutive 3×3 filters.
INLINE __m256i filter_offsets8(void) { return _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63); }

TARGET void finch_winograd4_weight_transform_avx2(const float *w, long plane, float *u, long begin, long end) {
    const __m256i offsets = filter_offsets8();
    for (long p = begin; p < end; p += 8) {
        __m256i keep = lanes8(end - p);
        V t[3][6];
        for (long i = 0; i < 3; i++) {
            V g[3];
            for (long j = 0; j < 3; j++)
                g[j] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), w + p * 9 + 3 * i + j, offsets,
                                                _mm256_castsi256_ps(keep), 4);
            g6(g, t[i]);
        }
        for (long j = 0; j < 6; j++) {
            V column[3] = {t[0][j], t[1][j], t[2][j]}, out[6];
            g6(column, out);
            for (long k = 0; k < 6; k++) put(u + (6 * k + j) * plane + p, keep, out[k]);
        }
    }
}

TARGET void finch_winograd4_weight_gradient_avx2(const float *du, long plane, float *dw, long begin, long end) {
    float lanes_out[8] __attribute__((aligned(32)));
    for (long p = begin; p < end; p += 8) {
        long count = end - p < 8 ? end - p : 8;
        __m256i keep = lanes8(count);
        V t[6][3];
        for (long k = 0; k < 6; k++) {
            V row[6];
            for (long j = 0; j < 6; j++) row[j] = _mm256_maskload_ps(du + (6 * k + j) * plane + p, keep);
            gt3(row, t[k]);
        }
        for (long q = 0; q < 3; q++) {
            V column[6] = {t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]}, out[3];
            gt3(column, out);
            for (long i = 0; i < 3; i++) {
                _mm256_store_ps(lanes_out, out[i]);
                float *o = dw + p * 9 + 3 * i + q;
                for (long k = 0; k < count; k++) o[9 * k] = lanes_out[k];
            }
        }
    }
}
#endif
