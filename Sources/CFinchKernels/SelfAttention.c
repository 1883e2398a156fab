// Multi-head self-attention's core (SelfAttention.h) for the avx2 and avx512 paths, in eight-lane
// AVX2 + FMA code that both paths run, so both give the same bits.
//
// MobileViT's attention multiplies many small matrices: at 224 px, stage 2 has 128 sequences × 4
// heads of 196 tokens with 16 values per head. Through OpenBLAS every one of those products packed
// its operands, the 196 × 196 weights were written, read by the softmax, written and read again,
// and backward added a product for each gradient and copies to bring q, k and v's gradients back
// into the projection's layout. Here each (sequence, head) runs by blocks of four query rows: the
// scores, softmax and weighted sum of a block stay in a few kilobytes of scratch, the weights are
// never written to memory (backward rebuilds them), and backward writes q, k and v's gradients in place.
//
// Every sum runs in a fixed order that does not depend on the vector width or the thread count:
// scores and dP over the head's values t in order (vectors across tokens j), weighted sums over
// tokens j in order (vectors across t), row sums in eight lanes over j, the lanes added in order.

#include "SelfAttention.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include "Exponential8.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

#define BLOCK_ROWS 4

__attribute__((target("avx2,fma"), always_inline))
static inline float lanes_sum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    float s = 0.0f;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}

// out[r][j] = Σ_t a_r[t]·bt[t][j] for rows r < rows and j < np (np a multiple of 8), t in order.
// a_r = a + r·astride; bt is [d][np].
__attribute__((target("avx2,fma"), always_inline))
static inline void row_products(const float *a, long astride, const float *bt, long np, long d, float *out,
                                const long rows) {
    long j = 0;
    for (; j + 16 <= np; j += 16) {
        __m256 acc[BLOCK_ROWS][2];
#pragma clang loop unroll(full)
        for (long r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (long t = 0; t < d; t++) {
            const __m256 b0 = _mm256_loadu_ps(bt + t * np + j), b1 = _mm256_loadu_ps(bt + t * np + j + 8);
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) {
                const __m256 x = _mm256_broadcast_ss(a + r * astride + t);
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
#pragma clang loop unroll(full)
        for (long r = 0; r < rows; r++) {
            _mm256_storeu_ps(out + r * np + j, acc[r][0]);
            _mm256_storeu_ps(out + r * np + j + 8, acc[r][1]);
        }
    }
    if (j < np) {
        __m256 acc[BLOCK_ROWS];
#pragma clang loop unroll(full)
        for (long r = 0; r < rows; r++) acc[r] = _mm256_setzero_ps();
        for (long t = 0; t < d; t++) {
            const __m256 b0 = _mm256_loadu_ps(bt + t * np + j);
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * astride + t), b0, acc[r]);
        }
#pragma clang loop unroll(full)
        for (long r = 0; r < rows; r++) _mm256_storeu_ps(out + r * np + j, acc[r]);
    }
}

// out_r[t] = scale[r] · Σ_j w[r][j]·x_j[t] for r < rows, j < n in order; x_j = x + j·xstride,
// w is rows × np, out_r = out + r·ostride.
__attribute__((target("avx2,fma"), always_inline))
static inline void weighted_rows(const float *w, long np, long n, const float *x, long xstride, long d,
                                 const float *scale, float *out, long ostride, const long rows) {
    __m256 sv[BLOCK_ROWS];
#pragma clang loop unroll(full)
    for (long r = 0; r < rows; r++) sv[r] = _mm256_set1_ps(scale[r]);
    for (long tc = 0; tc < d; tc += 16) {
        const __m256i m0 = finch_avx2_span(0, d - tc, 8), m1 = finch_avx2_span(0, d - tc - 8, 8);
        if (d - tc > 8) {
            __m256 acc[BLOCK_ROWS][2];
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            if (d - tc >= 16) {
                for (long j = 0; j < n; j++) {
                    const float *xj = x + j * xstride + tc;
                    const __m256 x0 = _mm256_loadu_ps(xj), x1 = _mm256_loadu_ps(xj + 8);
#pragma clang loop unroll(full)
                    for (long r = 0; r < rows; r++) {
                        const __m256 b = _mm256_broadcast_ss(w + r * np + j);
                        acc[r][0] = _mm256_fmadd_ps(b, x0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(b, x1, acc[r][1]);
                    }
                }
            } else {
                for (long j = 0; j < n; j++) {
                    const float *xj = x + j * xstride + tc;
                    const __m256 x0 = _mm256_loadu_ps(xj), x1 = _mm256_maskload_ps(xj + 8, m1);
#pragma clang loop unroll(full)
                    for (long r = 0; r < rows; r++) {
                        const __m256 b = _mm256_broadcast_ss(w + r * np + j);
                        acc[r][0] = _mm256_fmadd_ps(b, x0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(b, x1, acc[r][1]);
                    }
                }
            }
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) {
                _mm256_maskstore_ps(out + r * ostride + tc, m0, _mm256_mul_ps(acc[r][0], sv[r]));
                _mm256_maskstore_ps(out + r * ostride + tc + 8, m1, _mm256_mul_ps(acc[r][1], sv[r]));
            }
        } else {
            __m256 acc[BLOCK_ROWS];
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) acc[r] = _mm256_setzero_ps();
            for (long j = 0; j < n; j++) {
                const __m256 x0 = _mm256_maskload_ps(x + j * xstride + tc, m0);
#pragma clang loop unroll(full)
                for (long r = 0; r < rows; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + r * np + j), x0, acc[r]);
            }
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) _mm256_maskstore_ps(out + r * ostride + tc, m0, _mm256_mul_ps(acc[r], sv[r]));
        }
    }
}

// acc[j][t] += Σ_r w[r][j]·x_r[t] (r in order) for j < n; acc rows are dpad (d rounded up to 8)
// long, x_r = x + r·xstride.
__attribute__((target("avx2,fma"), always_inline))
static inline void accumulate_rows(float *acc, long dpad, const float *w, long np, long n, const float *x,
                                   long xstride, long d, const long rows) {
    for (long tc = 0; tc < d; tc += 8) {
        const __m256i m = finch_avx2_span(0, d - tc, 8);
        __m256 xr[BLOCK_ROWS];
#pragma clang loop unroll(full)
        for (long r = 0; r < rows; r++) xr[r] = _mm256_maskload_ps(x + r * xstride + tc, m);
        for (long j = 0; j < n; j++) {
            float *aj = acc + j * dpad + tc;
            __m256 a = _mm256_loadu_ps(aj);
#pragma clang loop unroll(full)
            for (long r = 0; r < rows; r++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + r * np + j), xr[r], a);
            _mm256_storeu_ps(aj, a);
        }
    }
}

// e^x for x ≤ 0 (scores less their row's maximum) by exp8's reduction and polynomial, without the
// cases such x never reach: no overflow, and below -87.3, where e^x leaves float's normal range, the
// ~1e-38 of -87.3 instead of a subnormal or 0, which a row's sum (at least 1, its maximum's term)
// cannot see. Half of exp8's instructions, in the pass that costs the forward kernel more than either product.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 exp8_nonpositive(__m256 x) {
    // x is max's second operand, so a NaN passes through.
    const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);
    __m256i ni;
    const __m256 p = exp8_reduced(xc, &ni);
    const __m256 two_n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(p, two_n);
}

// Softmax of the row s[0 ..< n] (s has np ≥ n slots): leaves e^(s − max) in s, writes the weights
// e·(1/Σe) to probs (when not NULL) and returns 1/Σe, by which the weighted sum of v is scaled once
// per value instead of once per weight. A NaN score is passed over by the maximum, and a row with no
// finite maximum is shifted by 0, as the softmax kernels do; the padding's e are below 1e-37 and
// never read.
__attribute__((target("avx2,fma"), always_inline))
static inline float softmax_row(float *s, long n, long np, float *probs) {
    for (long j = n; j < np; j++) s[j] = -INFINITY;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (long j = 0; j < np; j += 8) mv = _mm256_max_ps(_mm256_loadu_ps(s + j), mv);
    float l[8];
    _mm256_storeu_ps(l, mv);
    float m = -INFINITY;
    for (int i = 0; i < 8; i++) m = l[i] > m ? l[i] : m;
    if (!isfinite(m)) m = 0.0f;
    const __m256 shift = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (long j = 0; j < np; j += 8) {
        const __m256 e = exp8_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), shift));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    const float inv = 1.0f / lanes_sum(sum);
    if (probs) {
        const __m256 iv = _mm256_set1_ps(inv);
        for (long j = 0; j < np; j += 8)
            _mm256_maskstore_ps(probs + j, finch_avx2_span(0, n - j, 8), _mm256_mul_ps(_mm256_loadu_ps(s + j), iv));
    }
    return inv;
}

// dp[0 ..< n] ← p·(dp − Σ dp·p), softmax's backward for one row; the padding of dp ends as 0.
__attribute__((target("avx2,fma"), always_inline))
static inline void softmax_gradient_row(float *dp, const float *p, long n, long np) {
    // Four accumulators, vector v into v mod 4, so the sum is not one chain of dependent FMAs.
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (long j = 0; j < np; j += 8) {
        const __m256i m = finch_avx2_span(0, n - j, 8);
        acc[(j >> 3) & 3] = _mm256_fmadd_ps(_mm256_loadu_ps(dp + j), _mm256_maskload_ps(p + j, m), acc[(j >> 3) & 3]);
    }
    const __m256 c = _mm256_set1_ps(lanes_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))));
    for (long j = 0; j < np; j += 8) {
        const __m256i m = finch_avx2_span(0, n - j, 8);
        const __m256 ds = _mm256_mul_ps(_mm256_maskload_ps(p + j, m), _mm256_sub_ps(_mm256_loadu_ps(dp + j), c));
        _mm256_storeu_ps(dp + j, _mm256_and_ps(ds, _mm256_castsi256_ps(m)));
    }
}

typedef struct {
    long n, np, d, dpad, heads, c, row;  // row: 3·c, the distance between tokens in qkv
    float scale;
} Geometry;

static Geometry geometry(long n, long heads, long d, float scale) {
    Geometry g = {n, (n + 7) & ~7L, d, (d + 7) & ~7L, heads, heads * d, 3 * heads * d, scale};
    return g;
}

// tr[t][j] = x_j[t], zero-padded to np tokens.
static void stage_transposed(const Geometry *g, const float *x, float *tr) {
    for (long t = 0; t < g->d; t++) {
        float *dst = tr + t * g->np;
        for (long j = 0; j < g->n; j++) dst[j] = x[j * g->row + t];
        for (long j = g->n; j < g->np; j++) dst[j] = 0.0f;
    }
}

// qs[i][t] = q_i[t]·scale; tr[t][j] = x_j[t], zero-padded to np tokens.
static void stage_pair(const Geometry *g, const float *q, const float *x, float *qs, float *tr) {
    for (long i = 0; i < g->n; i++)
        for (long t = 0; t < g->d; t++) qs[i * g->d + t] = q[i * g->row + t] * g->scale;
    stage_transposed(g, x, tr);
}

// A block of query rows' weights: scores into srow, e^(s − max) left there, the weights written to
// probs (rows np apart; NULL: not written) and 1/Σe to inv. Backward calls this too, so the weights
// it differentiates are the forward's, bit for bit.
__attribute__((target("avx2,fma"), always_inline))
static inline void weights_rows(const Geometry *g, const float *qs, const float *kt, float *srow, float *probs,
                                float *inv, const long rows) {
    row_products(qs, g->d, kt, g->np, g->d, srow, rows);
#pragma clang loop unroll(full)
    for (long r = 0; r < rows; r++) inv[r] = softmax_row(srow + r * g->np, g->n, g->np, probs ? probs + r * g->np : NULL);
}

__attribute__((target("avx2,fma"), always_inline))
static inline void forward_rows(const Geometry *g, const float *qs, const float *kt, const float *v, float *srow,
                                float *o, const long rows) {
    float inv[BLOCK_ROWS];
    weights_rows(g, qs, kt, srow, NULL, inv, rows);
    weighted_rows(srow, g->np, g->n, v, g->row, g->d, inv, o, g->c, rows);
}

__attribute__((target("avx2,fma")))
static void forward_pair(const Geometry *g, const float *base, float *out, float *scratch) {
    float *qs = scratch, *kt = qs + g->n * g->d, *srow = kt + g->d * g->np;
    stage_pair(g, base, base + g->c, qs, kt);
    const float *v = base + 2 * g->c;
    for (long i = 0; i < g->n; i += BLOCK_ROWS) {
        const long rows = g->n - i < BLOCK_ROWS ? g->n - i : BLOCK_ROWS;
        float *o = out + i * g->c;
        const float *q = qs + i * g->d;
        switch (rows) {
        case 4: forward_rows(g, q, kt, v, srow, o, 4); break;
        case 3: forward_rows(g, q, kt, v, srow, o, 3); break;
        case 2: forward_rows(g, q, kt, v, srow, o, 2); break;
        default: forward_rows(g, q, kt, v, srow, o, 1); break;
        }
    }
}

// The weights are rebuilt here from q and k rather than kept from the forward: writing them there
// and reading them back cost more than the scores and softmax again (MobileViT-XXS at 224 px: 79 MB
// per stage-2 layer, kept from each layer's forward to its backward).
__attribute__((target("avx2,fma"), always_inline))
static inline void backward_rows(const Geometry *g, const float *qs, const float *kt, const float *vt, const float *k,
                                 const float *go, float *srow, float *p, float *dp, float *dq, float *dk, float *dv,
                                 const long rows) {
    float inv[BLOCK_ROWS];
    weights_rows(g, qs, kt, srow, p, inv, rows);
    row_products(go, g->c, vt, g->np, g->d, dp, rows);
#pragma clang loop unroll(full)
    for (long r = 0; r < rows; r++) softmax_gradient_row(dp + r * g->np, p + r * g->np, g->n, g->np);
    const float scale[BLOCK_ROWS] = {g->scale, g->scale, g->scale, g->scale};
    weighted_rows(dp, g->np, g->n, k, g->row, g->d, scale, dq, g->row, rows);
    accumulate_rows(dk, g->dpad, dp, g->np, g->n, qs, g->d, g->d, rows);
    accumulate_rows(dv, g->dpad, p, g->np, g->n, go, g->c, g->d, rows);
}

__attribute__((target("avx2,fma")))
static void backward_pair(const Geometry *g, const float *base, const float *go, float *gbase, float *scratch) {
    float *qs = scratch, *kt = qs + g->n * g->d, *vt = kt + g->d * g->np, *srow = vt + g->d * g->np;
    float *p = srow + BLOCK_ROWS * g->np, *dp = p + BLOCK_ROWS * g->np;
    float *dk = dp + BLOCK_ROWS * g->np, *dv = dk + g->n * g->dpad;
    stage_pair(g, base, base + g->c, qs, kt);
    stage_transposed(g, base + 2 * g->c, vt);
    memset(dk, 0, (size_t)(2 * g->n * g->dpad) * sizeof(float));
    const float *k = base + g->c;
    for (long i = 0; i < g->n; i += BLOCK_ROWS) {
        const long rows = g->n - i < BLOCK_ROWS ? g->n - i : BLOCK_ROWS;
        const float *q = qs + i * g->d, *gi = go + i * g->c;
        float *dq = gbase + i * g->row;
        switch (rows) {
        case 4: backward_rows(g, q, kt, vt, k, gi, srow, p, dp, dq, dk, dv, 4); break;
        case 3: backward_rows(g, q, kt, vt, k, gi, srow, p, dp, dq, dk, dv, 3); break;
        case 2: backward_rows(g, q, kt, vt, k, gi, srow, p, dp, dq, dk, dv, 2); break;
        default: backward_rows(g, q, kt, vt, k, gi, srow, p, dp, dq, dk, dv, 1); break;
        }
    }
    for (long j = 0; j < g->n; j++) {
        memcpy(gbase + j * g->row + g->c, dk + j * g->dpad, (size_t)g->d * sizeof(float));
        memcpy(gbase + j * g->row + 2 * g->c, dv + j * g->dpad, (size_t)g->d * sizeof(float));
    }
}

static int has_kernels(void) { return finch_avx2_selected() || finch_avx512_selected(); }

int finch_attention_forward(const float *qkv, float *out, long first, long count, long n, long heads, long head_dim,
                            float scale) {
    if (!has_kernels()) return 0;
    const Geometry g = geometry(n, heads, head_dim, scale);
    float *scratch = malloc((size_t)(g.n * g.d + g.d * g.np + BLOCK_ROWS * g.np + 8) * sizeof(float));
    if (!scratch) return -1;
    for (long pair = first; pair < first + count; pair++) {
        const long s = pair / heads, h = pair % heads;
        forward_pair(&g, qkv + s * n * g.row + h * g.d, out + s * n * g.c + h * g.d, scratch);
    }
    free(scratch);
    return 1;
}

int finch_attention_backward(const float *qkv, const float *grad_out, float *grad_qkv, long first, long count, long n,
                             long heads, long head_dim, float scale) {
    if (!has_kernels()) return 0;
    const Geometry g = geometry(n, heads, head_dim, scale);
    float *scratch = malloc((size_t)(g.n * g.d + 2 * g.d * g.np + 3 * BLOCK_ROWS * g.np + 2 * g.n * g.dpad + 8) *
                            sizeof(float));
    if (!scratch) return -1;
    for (long pair = first; pair < first + count; pair++) {
        const long s = pair / heads, h = pair % heads;
        backward_pair(&g, qkv + s * n * g.row + h * g.d, grad_out + s * n * g.c + h * g.d,
                      grad_qkv + s * n * g.row + h * g.d, scratch);
    }
    free(scratch);
    return 1;
}
#else
int finch_attention_forward(const float *qkv, float *out, long first, long count, long n, long heads, long head_dim,
                            float scale) {
    (void)qkv; (void)out; (void)first; (void)count; (void)n; (void)heads; (void)head_dim; (void)scale;
    return 0;
}

int finch_attention_backward(const float *qkv, const float *grad_out, float *grad_qkv, long first, long count, long n,
                             long heads, long head_dim, float scale) {
    (void)qkv; (void)grad_out; (void)grad_qkv; (void)first; (void)count; (void)n; (void)heads; (void)head_dim;
    (void)scale;
    return 0;
}
#endif
