// Hot kernels with AVX-512 (and, for the exponentials, AVX2) code paths chosen at run time.
//
// Swift has no per-function target features, so a portable Swift build runs its SIMD types on
// SSE2: four lanes, no FMA. These kernels carry their own wide variants and pick one from the
// CPU they run on, so one binary stays portable and still uses the vector units it finds.
// Every element goes through the same arithmetic wherever it sits in the buffer (tails are
// masked or padded, not handled by a scalar loop), so results do not depend on how work is split.
// The exponentials have a generic C path; the other kernels return 0 without AVX-512 and their
// Swift callers run their own code instead.

#ifndef FINCH_KERNELS_H
#define FINCH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// dst[i] = exp(src[i] − shift). src and dst may be the same buffer.
void finch_exp_shifted(const float *src, float *dst, size_t n, float shift);
/// dst[i] = x / (1 + exp(−x)).
void finch_silu(const float *src, float *dst, size_t n);
/// dst[i] = 1 / (1 + exp(−x)).
void finch_sigmoid(const float *src, float *dst, size_t n);
/// dst[i] = g·s·(1 + x·(1 − s)) with s = sigmoid(x): SiLU's derivative times the upstream gradient.
void finch_silu_backward(const float *g, const float *x, float *dst, size_t n);
/// Softmax (log_softmax 0) or log-softmax (1) of `rows` contiguous rows of r elements, with the
/// same exponential as finch_exp_shifted. Returns 0 without touching anything when the CPU has no AVX-512.
int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax);
/// One part of a parallel loop: `part` in 0 ..< parts of the call that started it.
typedef void (*finch_pool_task)(void *context, long part);
/// Runs fn(context, 0 ..< parts) on the calling thread and up to `workers` persistent workers, each
/// taking the next part until none are left; returns 1 when all are done. Without running anything it returns 0 when called from inside a part (a
/// nested loop, which the caller runs serially) and −1 while another thread's loop holds the pool
/// or if no worker could start.
int finch_pool_run(long parts, long workers, void *context, finch_pool_task fn);
/// How long an idle worker polls for the next loop before it sleeps (default 200 µs).
void finch_pool_set_spin_ns(long nanoseconds);
/// The instruction set the kernels use on this CPU: "avx512", "avx2" or "generic".
const char *finch_kernels_isa(void);
/// Switches to the named instruction set ("avx512", "avx2", "generic") if this CPU has it;
/// returns 1 on success, 0 otherwise. For tests, which check every path the CPU can run.
int finch_kernels_use(const char *isa);

/// Depthwise convolution forward on channel tiles of sixteen lanes (AVX-512), for units
/// unit_begin..<unit_end, unit = block · n + sample with blocks of 16 channels (see
/// DepthwiseConvChannelTiles.swift). geometry = {n, c, h, w, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo};
/// scratch holds finch_depthwise_tiles16_scratch(geometry) floats, 64-byte aligned.
/// Returns 0 without touching anything when the CPU has no AVX-512.
int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch);
long finch_depthwise_tiles16_scratch(const long *geometry);

/// Depthwise convolution forward for one (channel, sample) plane from its packed input rows: out
/// ([ho, wo]) = bias + the taps, with the same operations in the same order as the Swift rows kernel
/// (no FMA), so results are identical. geometry and taps as for finch_depthwise_backward_plane.
/// Returns 0 without touching anything when the CPU has no AVX-512.
int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps);

/// The same for column stride 1 (geometry[12] = 1) from the unpacked input plane ([h, w]):
/// geometry as for finch_depthwise_backward_plane followed by {w, pl}. Identical results to
/// finch_depthwise_forward_plane. Returns 0 without touching anything when the CPU has no AVX-512
/// or the column stride is not 1.
int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry);

/// 3×3 max pooling with stride 2 and dilation 1 over one [h, w] plane into [ho, wo], top/left
/// padding pt, pl (padding never wins): the same comparisons in the same
/// order as the Swift kernel (a greater value or a NaN replaces the held one), and when `indices`
/// is not NULL the position in the plane of each output's value (before any comparison, the
/// window's first element inside the plane). Returns 0 without touching anything when the CPU
/// has no AVX-512.
int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices);

/// Depthwise convolution backward for one (channel, sample) plane on packed input rows (see
/// DepthwiseConv.swift): adds dy·x products into acc ([kh·kw, wo] partial sums, when acc is not
/// NULL) and the weight-scaled dy into the packed input gradient dpacked (when not NULL).
/// geometry = {kh, kw, sh, dh, dw, pt, h, ho, wo, packed row, padded row, edge, gather (sw = 1)};
/// taps[j] is tap j's offset in a packed row; dy_pad holds wo + 2·edge floats, zero outside the
/// middle. Returns 0 without touching anything when the CPU has no AVX-512.
int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps);

/// dst[i] = act((src[i] − mean)·scale + shift), the per-channel pass of evaluation-mode BatchNorm
/// with its activation: 0 identity, 1 relu, 2 relu6, 3 hardswish, 4 hardsigmoid, 5 silu, 6 sigmoid
/// (FusedActivation's order). Same operations in the same order as the Swift kernels (no FMA), so
/// results are identical, except silu and sigmoid, whose reciprocal is an estimate refined by one
/// Newton step (a few units in the last place). Returns 0 without touching anything when the CPU
/// has no AVX-512.
int finch_affine_activation(const float *src, float *dst, size_t n, float mean, float scale, float shift,
                            int activation);

/// x[i] = act(((x[i] − mean)·scale + shift) + r[i]) in place: the end of a residual block
/// (BatchNorm, the shortcut r, the activation after the sum), with finch_affine_activation's
/// activation codes and the same operations as the Swift kernels. Returns 0 without touching
/// anything when the CPU has no AVX-512.
int finch_residual_activation(float *x, const float *r, size_t n, float mean, float scale, float shift,
                              int activation);

/// out[0] = Σ(a − sa), out[1] = Σ(a − sa)·(b − sb) over n values (Float lanes; callers add planes
/// in Double): training BatchNorm's mean and variance of a plane (a = b = x) and its backward's
/// Σg and Σg·(x − mean) (a = g, sa = 0, b = x, sb = mean). Returns 0 without touching anything
/// when the CPU has no AVX-512.
int finch_centered_products(const float *a, float sa, const float *b, float sb, size_t n, float *out);

/// dx = a·(g − mean_g − (x − mean)·k), BatchNorm's training-mode input gradient for one plane
/// (a = γ·invstd, mean_g = mean of g, k = mean of g·(x − mean) · invstd²). dx may be g.
int finch_batchnorm_input_gradient(const float *g, const float *x, float *dx, size_t n, float a, float mean_g,
                                   float mean, float k);

/// Direct convolution for few input channels (groups 1, dilation 1, column stride 1 or 2), for
/// units unit_begin..<unit_end, unit = (sample · ⌈cout / 16⌉ + block) · ho + output row.
/// geometry = {n, c, h, w, cout, kh, kw, sh, sw, pt, pl, ho, wo}; scratch holds
/// finch_few_channel_conv_scratch(geometry) floats. Returns 0 when the CPU has no AVX-512.
int finch_few_channel_conv(const float *x, const float *weight, const float *bias, float *out, const long *geometry,
                           long unit_begin, long unit_end, float *scratch);
long finch_few_channel_conv_scratch(const long *geometry);

/// 1×1 convolution (groups 1) of x [n, c, hw] into out [n, cout, hw] for units unit_begin..<unit_end of
/// finch_pointwise_small_units(n, cout, hw), each one block of output channels for one sample.
/// For small planes (hw from 16 to a few hundred); scratch holds 16·c floats. Returns 0 when the
/// CPU has no AVX-512.
int finch_pointwise_small(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                          long cout, long hw, long unit_begin, long unit_end, float *scratch);
long finch_pointwise_small_units(long n, long cout, long hw);

/// Winograd F(2×2, 3×3) weight transform of filters begin..<end of w [plane, 3, 3]:
/// u[ξ·plane + p] = (G·g·Gᵀ)[ξ]. Bit-equal to the Swift kernel. Returns 0 when the CPU has no AVX-512.
int finch_winograd_weight_transform(const float *w, long plane, float *u, long begin, long end);
/// Winograd F(2×2, 3×3) input transform of one input plane [h, w] with padding (pt, pl), onto
/// th × tw tiles: dst[ξ·stride + t] = (Bᵀ·d·B)[ξ] for tile t = ty·tw + tx (see WinogradConv.swift).
/// Bit-equal to the Swift kernel. Returns 0 without touching anything when the CPU has no AVX-512.
int finch_winograd_input_transform(const float *plane, long h, long w, long pt, long pl, long th, long tw,
                                   float *dst, long stride);
/// The weight-gradient transform of one output-gradient plane [ho, wo]: dst[ξ·stride + t] =
/// (A·dY·Aᵀ)[ξ] for the 2×2 block of tile t, zero past odd edges. Bit-equal to the Swift kernel.
/// Returns 0 when the CPU has no AVX-512.
int finch_winograd_gradient_transform(const float *plane, long ho, long wo, long th, long tw, float *dst,
                                      long stride);
/// The output transform of one output plane [ho, wo]: out[2ty + a, 2tx + b] = (Aᵀ·M·A)[a, b] + bias,
/// M[ξ] = src[ξ·stride + t], clipped at odd edges. Returns 0 when the CPU has no AVX-512.
int finch_winograd_output_transform(const float *src, long stride, long th, long tw, long ho, long wo,
                                    float bias, float *out);

/// Winograd F(4×4, 3×3) (see WinogradConv.swift and WinogradF4Transforms.c). Each returns 0 without
/// touching anything when the CPU has no AVX-512. Transformed matrices are ξ = 6·row + column,
/// `stride` floats apart; within one, element f = sample · th·tw + ty·tw + tx.
/// Weights: u[ξ·plane + p] = (G·g·Gᵀ)[ξ] for filters begin..<end of w [plane, 3, 3].
int finch_winograd4_weight_transform(const float *w, long plane, float *u, long begin, long end);
/// Weight gradient: dw[p] = Gᵀ·du[p]·G for filters begin..<end (du laid out as u above).
int finch_winograd4_weight_gradient(const float *du, long plane, float *dw, long begin, long end);
/// Input: `samples` planes [h, w] of one channel, sample_stride apart, padded by (pt, pl), onto
/// th × tw tiles of 6×6. Offsets within the `samples` planes must fit in 32 bits.
int finch_winograd4_input_transform(const float *x, long sample_stride, long samples, long h, long w, long pt,
                                    long pl, long th, long tw, float *dst, long stride);
/// Output gradient for the weight gradient: (A·dY·Aᵀ) of each 4×4 block of `samples` planes [ho, wo]
/// (zero past the edges).
int finch_winograd4_gradient_transform(const float *dy, long sample_stride, long samples, long ho, long wo, long th,
                                       long tw, float *dst, long stride);
/// Output: out[s, 4ty + a, 4tx + b] = (Aᵀ·M·A)[a, b] + bias for `samples` planes [ho, wo],
/// sample_stride apart, clipped at the edges.
int finch_winograd4_output_transform(const float *src, long stride, long samples, long th, long tw, long ho, long wo,
                                     long sample_stride, float bias, float *out);

#endif
