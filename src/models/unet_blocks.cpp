#include "models/unet_blocks.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace pictor::models::unet {

namespace {
// Intermediate results that nobody else holds may be updated in place when autograd is off; with
// autograd on, out-of-place ops keep the graph intact.
bool may_mutate() {
  return !at::GradMode::is_enabled() || c10::InferenceMode::is_enabled();
}
}  // namespace

at::Tensor timestep_features(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                             double max_period) {
  const int64_t half = dim / 2;
  // The same float32 op sequence as diffusers, so the features match it bit for bit.
  at::Tensor exponent = at::arange(0, half, timesteps.options().dtype(at::kFloat)) * (-std::log(max_period));
  exponent = exponent / (static_cast<double>(half) - freq_shift);
  at::Tensor args = timesteps.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);
  at::Tensor emb =
      flip_sin_to_cos ? at::cat({at::cos(args), at::sin(args)}, -1) : at::cat({at::sin(args), at::cos(args)}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1});
  return emb;
}

TimestepEmbedding::TimestepEmbedding(nn::ParamSource& p, const std::string& prefix, int64_t in_dim, int64_t dim,
                                     nn::Activation act_)
    : linear_1(p, nn::join(prefix, "linear_1"), in_dim, dim),
      linear_2(p, nn::join(prefix, "linear_2"), dim, dim),
      act(act_) {}

at::Tensor TimestepEmbedding::operator()(const at::Tensor& features) const {
  return linear_2(nn::activate(linear_1(features), act));
}

ResnetBlock2D::ResnetBlock2D(nn::ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t temb_dim,
                             int64_t groups, double eps, nn::Activation act_, double scale)
    : norm1(p, nn::join(prefix, "norm1"), groups, in, eps),
      norm2(p, nn::join(prefix, "norm2"), groups, out, eps),
      conv1(nn::Conv2d(p, nn::join(prefix, "conv1"), in, out, 3, 1, 1)),
      conv2(nn::Conv2d(p, nn::join(prefix, "conv2"), out, out, 3, 1, 1)),
      time_emb_proj(p, nn::join(prefix, "time_emb_proj"), temb_dim, out),
      act(act_),
      output_scale_factor(scale) {
  if (in != out) conv_shortcut = nn::PrepackedConv2d(nn::Conv2d(p, nn::join(prefix, "conv_shortcut"), in, out, 1));
}

at::Tensor ResnetBlock2D::operator()(const at::Tensor& x, const at::Tensor& temb_act) const {
  const bool inplace = may_mutate() && act == nn::Activation::SiLU;
  auto norm_act = [&](const nn::GroupNorm& norm, const at::Tensor& t) {
    at::Tensor h = norm(t);
    return inplace ? at::silu_(h) : nn::activate(h, act);
  };
  at::Tensor h = conv1(norm_act(norm1, x));
  at::Tensor t = time_emb_proj(temb_act).unsqueeze(-1).unsqueeze(-1);
  h = inplace ? h.add_(t) : h + t;
  h = conv2(norm_act(norm2, h));
  at::Tensor shortcut = conv_shortcut.defined() ? conv_shortcut(x) : x;
  at::Tensor out = inplace ? h.add_(shortcut) : shortcut + h;
  if (output_scale_factor != 1.0) out = inplace ? out.div_(output_scale_factor) : out / output_scale_factor;
  return out;
}

Downsample2D::Downsample2D(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t padding)
    : conv(nn::Conv2d(p, nn::join(prefix, "conv"), channels, channels, 3, 2, padding)),
      pad_right_bottom(padding == 0) {}

at::Tensor Downsample2D::operator()(const at::Tensor& x) const {
  return conv(pad_right_bottom ? at::constant_pad_nd(x, {0, 1, 0, 1}) : x);
}

Upsample2D::Upsample2D(nn::ParamSource& p, const std::string& prefix, int64_t channels)
    : conv(nn::Conv2d(p, nn::join(prefix, "conv"), channels, channels, 3, 1, 1)) {}

at::Tensor Upsample2D::operator()(const at::Tensor& x, int64_t out_h, int64_t out_w) const {
  return conv(at::upsample_nearest2d(x, {out_h, out_w}));
}

}  // namespace pictor::models::unet
