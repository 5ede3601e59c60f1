#pragma once
// Scaled dot-product attention, chunked over query rows so the score matrix never exceeds a fixed
// budget (a naive 4096-token attention would allocate ~1 GiB). Under inference mode the chunk buffers
// are reused across calls; with autograd enabled a differentiable path is used.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pictor::nn {

// q [B, H, Tq, D], k/v [B, H, Tk, D] -> [B, H, Tq, D]. `mask`, if defined, is additive and
// broadcastable to [B, H, Tq, Tk]. `scale` defaults to 1/sqrt(D) when <= 0.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask = {},
                     double scale = 0.0);

// Frees this thread's reusable score buffers (up to 2 x the chunk size): a pipeline calls it between
// stages, e.g. before the VAE decode, so buffers sized for the UNet do not sit beside the decoder's peak.
void release_attention_scratch();

// Maximum bytes of one score chunk (default 64 MiB); exposed for benchmarks and tests.
void set_attention_chunk_bytes(int64_t bytes);
int64_t attention_chunk_bytes();

}  // namespace pictor::nn
