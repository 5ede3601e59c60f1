#pragma once
// Scaled dot-product attention, chunked over query rows so the score matrix never exceeds a fixed
// budget (a naive 4096-token attention would allocate ~1 GiB). Without autograd, (head, row block) tasks
// run in parallel, each reusing one cache-sized score buffer (at most 128 rows, and within the chunk
// budget); a few query rows against a KV cache take a fused kernel. With autograd enabled a
// differentiable path over chunks of all heads is used.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pictor::nn {

// q [B, H, Tq, D], k/v [B, H, Tk, D] -> [B, H, Tq, D]. `mask`, if defined, is additive and
// broadcastable to [B, H, Tq, Tk]. `scale` defaults to 1/sqrt(D) when <= 0.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask = {},
                     double scale = 0.0);

// Maximum bytes of one score chunk (default 64 MiB; per task and head without autograd); exposed for benchmarks and
// tests.
void set_attention_chunk_bytes(int64_t bytes);
int64_t attention_chunk_bytes();

// Whether inference may use the fused kernel of nn/flash_attention.hpp (default on); off, the blocked
// BLAS path runs. For benchmarks and for tests that compare the two.
void set_fused_attention(bool on);
bool fused_attention();

}  // namespace pictor::nn
