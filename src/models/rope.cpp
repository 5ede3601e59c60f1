#include "models/rope.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "nn/decode_kernels.hpp"

namespace pictor::models {

RotaryEmbedding::RotaryEmbedding(int64_t dim, double theta, c10::Device device) : dim_(dim) {
  if (dim <= 0 || dim % 2 != 0) throw Error("rotary embedding: dimension " + std::to_string(dim) + " must be even");
  // Same float32 expression as transformers (theta ** (arange(0, dim, 2) / dim)), so the frequencies
  // round identically.
  at::Tensor exponent = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / double(dim);
  inv_freq_ = at::pow(theta, exponent).reciprocal().to(device);
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::tables(const at::Tensor& position_ids) const {
  at::Tensor pos = position_ids.to(inv_freq_.device()).to(at::kFloat);
  at::Tensor freqs = pos.unsqueeze(-1) * inv_freq_;  // [B, T, dim / 2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

at::Tensor RotaryEmbedding::apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  at::Tensor c = cos.unsqueeze(1).to(x.scalar_type()), s = sin.unsqueeze(1).to(x.scalar_type());
  return x * c + rotated * s;
}

at::Tensor RotaryEmbedding::apply_to_projection(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin) {
  if (nn::decode_kernels::rotate_half_inplace(x, cos, sin)) return x.transpose(1, 2);
  return apply(x.transpose(1, 2), cos, sin);
}

}  // namespace pictor::models
