#pragma once
// Hand-written CPU kernels for the memory-bound part of language-model decoding (one new token per
// step). A decode step is ~40 small ATen ops per layer; for a 256M model the weights stream in ~20 ms per
// token while the dispatch, parallel-region and temporary-tensor overhead of those ops added another
// ~10 ms. These kernels do the same arithmetic in one pass each:
//
//   matvec        y = W x + b for one input row (BLAS sgemm packs the whole matrix for a single row),
//                 W fp32 or int8 with per-row scales (matvec_int8);
//   rms_norm      Llama's RMSNorm;
//   rotate_half   RoPE applied in place to a [B, T, H, D] projection output;
//   small_query_attention   softmax(q k^T * scale + mask) v for a few query rows against a KV cache;
//   softmax_rows  the row softmax of the attention blocks (also outside decoding: with a polynomial exp it
//                 runs 2x faster than at::softmax on a 128 x 4096 block, measured).
//
// Each returns an undefined tensor (or false) when its fast path does not apply -- not CPU, not float32,
// autograd recording, an unexpected layout, no AVX2/FMA -- and the caller then runs the ATen expression,
// which stays the reference: tests compare the two.
#include <ATen/core/Tensor.h>

namespace pictor::nn::decode_kernels {

// Whether the fast paths may run for these tensors: CPU float32, and no gradient to record.
bool applicable(const at::Tensor& a);

// weight [N, K] contiguous, x with K elements, bias [N] or undefined -> [N]. Undefined if not applicable.
at::Tensor matvec(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& bias);
// The same for an int8 weight with one fp32 scale per row (nn/int8_linear.hpp): values [N, K] int8 and
// scales [N], both contiguous; y[n] = (values[n] . x) * scales[n] + bias[n].
at::Tensor matvec_int8(const at::Tensor& values, const at::Tensor& scales, const at::Tensor& x, const at::Tensor& bias);

// x [..., C] -> weight * x / sqrt(mean(x^2) + eps), per row. Undefined if not applicable.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// Rotates x [B, T, H, D] (any strides with a unit last one) in place with tables cos/sin [B or 1, T, D] (the two halves
// of each table row equal, as RotaryEmbedding builds them). Returns false (x untouched) if not applicable.
bool rotate_half_inplace(at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// out = softmax(in) over the last dimension, row by row on this thread (the attention blocks call it from
// their own worker threads). Both contiguous float32 of the same shape, not aliased. False (out
// untouched) if not applicable. exp is a ~1 ulp polynomial, so results differ from at::softmax by a few ulp.
bool softmax_rows(const at::Tensor& in, at::Tensor& out);

// q [B, H, Tq, D], k/v [B, H, S, D] (any strides with a unit last stride), additive mask broadcastable to
// [B, H, Tq, S] or undefined -> [B, H, Tq, D]. Meant for Tq * D small (decode); undefined if not applicable.
at::Tensor small_query_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                 double scale);

}  // namespace pictor::nn::decode_kernels
