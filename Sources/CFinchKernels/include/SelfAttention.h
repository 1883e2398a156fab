// Multi-head self-attention's core, softmax(q·kᵀ·scale)·v per sequence and head, as one kernel
// (SelfAttention.c) instead of two batched GEMMs around a softmax.

#ifndef FINCH_SELF_ATTENTION_H
#define FINCH_SELF_ATTENTION_H

#include <stddef.h>

/// Forward for the (sequence, head) pairs first ..< first + count (pair = s·heads + h). `qkv` is a
/// fused projection's output [S, n, 3, heads, head_dim], contiguous; `out` gets the heads side by
/// side, [S, n, heads·head_dim]. Returns 0 without touching anything on the generic path (the caller
/// composes matmul and softmax), or -1 when scratch memory could not be had.
int finch_attention_forward(const float *qkv, float *out, long first, long count, long n, long heads, long head_dim,
                            float scale);

/// Backward of finch_attention_forward for the same pairs: from `grad_out` [S, n, heads·head_dim]
/// and `qkv` (the weights are rebuilt from it, as the forward computed them), writes every element
/// of those pairs' q, k and v slices of `grad_qkv` (laid out as `qkv`). Returns as the forward.
int finch_attention_backward(const float *qkv, const float *grad_out, float *grad_qkv, long first, long count, long n,
                             long heads, long head_dim, float scale);

#endif
