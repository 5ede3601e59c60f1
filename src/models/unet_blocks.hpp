#pragma once
// Convolutional building blocks of the diffusers UNet: the sinusoidal timestep embedding, ResnetBlock2D
// and the 2x down/up samplers. Parameter names follow the diffusers checkpoint layout.
#include <ATen/core/Tensor.h>

#include <string>

#include "nn/conv_prepack.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models::unet {

// Sinusoidal features of `timesteps` ([B], any numeric type) as diffusers' get_timestep_embedding:
// exponent_i = -ln(max_period) * i / (dim/2 - freq_shift), [sin | cos] of t * exp(exponent), halves
// swapped when flip_sin_to_cos, zero-padded to an odd `dim`. Computed in float32 like diffusers so a
// fractional timestep (617.25) gives the same features.
at::Tensor timestep_features(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                             double max_period = 10000.0);

// time_embedding: linear_1 -> act -> linear_2.
struct TimestepEmbedding {
  nn::Linear linear_1, linear_2;
  nn::Activation act = nn::Activation::SiLU;
  TimestepEmbedding() = default;
  TimestepEmbedding(nn::ParamSource& p, const std::string& prefix, int64_t in_dim, int64_t dim, nn::Activation act);
  at::Tensor operator()(const at::Tensor& features) const;
};

// ResnetBlock2D with the "default" time conditioning (the projected embedding is added after conv1).
struct ResnetBlock2D {
  nn::GroupNorm norm1, norm2;
  nn::PrepackedConv2d conv1, conv2, conv_shortcut;  // conv_shortcut (1x1) only when in != out channels
  nn::Linear time_emb_proj;
  nn::Activation act = nn::Activation::SiLU;
  double output_scale_factor = 1.0;
  ResnetBlock2D() = default;
  ResnetBlock2D(nn::ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t temb_dim,
                int64_t groups, double eps, nn::Activation act, double output_scale_factor);
  // `temb_act` is act(time embedding) [B, temb_dim]: every resnet applies the same activation to the same
  // embedding, so the caller computes it once.
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& temb_act) const;
};

// Downsample2D: 3x3 stride-2 conv (padding 1, or an asymmetric right/bottom pad when padding is 0).
struct Downsample2D {
  nn::PrepackedConv2d conv;
  bool pad_right_bottom = false;
  Downsample2D() = default;
  Downsample2D(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t padding);
  at::Tensor operator()(const at::Tensor& x) const;
};

// Upsample2D: nearest-neighbour resize to `size` (normally 2x) then a 3x3 conv.
struct Upsample2D {
  nn::PrepackedConv2d conv;
  Upsample2D() = default;
  Upsample2D(nn::ParamSource& p, const std::string& prefix, int64_t channels);
  at::Tensor operator()(const at::Tensor& x, int64_t out_h, int64_t out_w) const;
};

}  // namespace pictor::models::unet
