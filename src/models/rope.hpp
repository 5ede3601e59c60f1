#pragma once
// Rotary position embedding (RoPE) as transformers' LlamaRotaryEmbedding with rope_type "default":
// the two halves of each head vector are rotated by angles position * theta^(-2i/d).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <utility>

namespace pictor::models {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  // `dim` is the rotated width (the head dimension, even); `theta` is rope_theta.
  RotaryEmbedding(int64_t dim, double theta, c10::Device device);

  // cos and sin tables [B, T, dim] for integer `position_ids` [B, T], in float32 as transformers
  // computes them (the angle is an exact float32 product, so tables match bit for bit).
  std::pair<at::Tensor, at::Tensor> tables(const at::Tensor& position_ids) const;
  // x [B, H, T, dim] rotated with tables [B, T, dim].
  static at::Tensor apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
  // A fresh projection output x [B, T, H, dim] -> rotated [B, H, T, dim]. Rotates in place with a fused
  // kernel when it can (inference on the CPU), else as apply().
  static at::Tensor apply_to_projection(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin);

  int64_t dim() const { return dim_; }

 private:
  int64_t dim_ = 0;
  at::Tensor inv_freq_;  // [dim / 2], float32
};

}  // namespace pictor::models
