#pragma once
// Fused ("flash") attention for many query rows on AVX2/FMA CPUs, used by nn::attention at inference.
//
// The blocked BLAS path multiplies a block of queries by all keys, softmaxes the scores in a buffer and
// multiplies them by the values. With the small head sizes of diffusion UNets (40, 64, 80) both products
// are thin -- each score is used for only D multiply-adds -- and BLAS spends much of its time packing the
// score matrix and reloading its output tiles: ~55 GFLOP/s per core against ~85 for large GEMMs
// (measured). Here keys and values stream through in cache-sized chunks; a register-blocked kernel
// computes a 6 x 16 tile of scores over the whole head dimension, an online softmax (running maximum and
// sum per row, the partial output rescaled when the maximum grows) turns them into weights, and a second
// register-blocked kernel adds weights x values straight into the output rows. Nothing is packed but the
// keys (once per head) and no score matrix leaves L1.
//
// Work is split into (batch, head, block of rows) tasks whose arithmetic does not depend on the thread
// count; results differ from the two-product path by a few ulp (the exp polynomial, summation order).
#include <ATen/core/Tensor.h>

namespace pictor::nn::flash_attention {

// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] (any strides with a unit last stride), additive mask
// broadcastable to [B, H, Tq, Tk] with a unit (or broadcast) key stride, or undefined. Writes
// softmax(q k^T * scale + mask) v into out [B, H, Tq, Dv] (unit last stride) and returns true; returns
// false, writing nothing, where the kernel does not apply (no AVX2/FMA, not fp32 CPU, D or Dv not a
// multiple of 8 or above 512, an unsupported mask layout).
bool run(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double scale,
         const at::Tensor& out);

// Whether this CPU can run the kernel (x86 with AVX2 and FMA).
bool available();

}  // namespace pictor::nn::flash_attention
