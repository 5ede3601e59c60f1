#include "models/vae_blocks.hpp"

#include <ATen/ATen.h>

#include "nn/attention.hpp"

namespace pictor::models {

using nn::join;

namespace {
// diffusers builds every VAE normalisation with eps=1e-6 (not GroupNorm's default 1e-5).
constexpr double kVaeNormEps = 1e-6;
}  // namespace

VaeResnetBlock::VaeResnetBlock(nn::ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t groups,
                               nn::Activation act_)
    : act(act_) {
  norm1 = nn::GroupNorm(p, join(prefix, "norm1"), groups, in, kVaeNormEps);
  conv1 = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv1"), in, out, 3, 1, 1));
  norm2 = nn::GroupNorm(p, join(prefix, "norm2"), groups, out, kVaeNormEps);
  conv2 = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv2"), out, out, 3, 1, 1));
  if (in != out) conv_shortcut = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv_shortcut"), in, out, 1));
}

at::Tensor VaeResnetBlock::operator()(at::Tensor x) const {
  // Without autograd the block works in place and drops its input as soon as it can: at 512x512 the
  // decoder's last level holds 256-channel 512x512 maps (256 MiB each), and these copies set the peak
  // memory of a whole generation.
  const bool in_place = !at::GradMode::is_enabled() || c10::InferenceMode::is_enabled();
  at::Tensor skip = conv_shortcut.defined() ? conv_shortcut(x) : x;
  at::Tensor h = norm1(x);
  x.reset();  // the caller handed its reference over (std::move), so this frees the input when skip != x
  h = conv1(in_place ? nn::activate_(h, act) : nn::activate(h, act));
  h = norm2(h);
  h = conv2(in_place ? nn::activate_(h, act) : nn::activate(h, act));
  return in_place ? h.add_(skip) : skip + h;
}

VaeAttention::VaeAttention(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t groups) {
  norm = nn::GroupNorm(p, join(prefix, "group_norm"), groups, channels, kVaeNormEps);
  // Checkpoints converted by diffusers before 0.14 use the deprecated attention block's names.
  const bool legacy = !p.has(join(prefix, "to_q.weight")) && p.has(join(prefix, "query.weight"));
  to_q = nn::Linear(p, join(prefix, legacy ? "query" : "to_q"), channels, channels);
  to_k = nn::Linear(p, join(prefix, legacy ? "key" : "to_k"), channels, channels);
  to_v = nn::Linear(p, join(prefix, legacy ? "value" : "to_v"), channels, channels);
  to_out = nn::Linear(p, join(prefix, legacy ? "proj_attn" : "to_out.0"), channels, channels);
}

at::Tensor VaeAttention::operator()(const at::Tensor& x) const {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  // [B, C, H, W] -> tokens [B, H*W, C]; one head of width C.
  at::Tensor tokens = norm(x).reshape({B, C, H * W}).transpose(1, 2);
  at::Tensor q = to_q(tokens).unsqueeze(1);
  at::Tensor k = to_k(tokens).unsqueeze(1);
  at::Tensor v = to_v(tokens).unsqueeze(1);
  // Chunked: a 64x64 latent is 4096 tokens, whose full score matrix would be 64 MiB per image.
  at::Tensor o = to_out(nn::attention(q, k, v).squeeze(1));
  return x + o.transpose(1, 2).reshape({B, C, H, W});
}

VaeMidBlock::VaeMidBlock(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t groups,
                         nn::Activation act, bool add_attention)
    : has_attention(add_attention) {
  resnet0 = VaeResnetBlock(p, join(prefix, "resnets.0"), channels, channels, groups, act);
  if (has_attention) attention = VaeAttention(p, join(prefix, "attentions.0"), channels, groups);
  resnet1 = VaeResnetBlock(p, join(prefix, "resnets.1"), channels, channels, groups, act);
}

at::Tensor VaeMidBlock::operator()(at::Tensor x) const {
  at::Tensor h = resnet0(std::move(x));
  if (has_attention) h = attention(h);
  return resnet1(std::move(h));
}

VaeEncoder::VaeEncoder(nn::ParamSource& p, const std::string& prefix, int64_t in_channels, int64_t latent_channels,
                       const VaeStackSpec& spec) {
  const auto& ch = spec.block_out_channels;
  conv_in_ = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv_in"), in_channels, ch.front(), 3, 1, 1));
  int64_t cur = ch.front();
  for (size_t i = 0; i < ch.size(); ++i) {
    const std::string block = join(prefix, "down_blocks." + std::to_string(i));
    Level level;
    for (int64_t j = 0; j < spec.layers_per_block; ++j) {
      level.resnets.emplace_back(p, join(block, "resnets." + std::to_string(j)), cur, ch[i], spec.norm_groups,
                                 spec.act);
      cur = ch[i];
    }
    if (i + 1 < ch.size())
      level.downsample = nn::PrepackedConv2d(nn::Conv2d(p, join(block, "downsamplers.0.conv"), cur, cur, 3, 2, 0));
    levels_.push_back(std::move(level));
  }
  mid_ = VaeMidBlock(p, join(prefix, "mid_block"), cur, spec.norm_groups, spec.act, spec.mid_block_add_attention);
  norm_out_ = nn::GroupNorm(p, join(prefix, "conv_norm_out"), spec.norm_groups, cur, kVaeNormEps);
  conv_out_ = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv_out"), cur, 2 * latent_channels, 3, 1, 1));
}

at::Tensor VaeEncoder::operator()(const at::Tensor& image) const {
  at::Tensor h = conv_in_(image);
  for (const auto& level : levels_) {
    for (const auto& r : level.resnets) h = r(std::move(h));
    // Asymmetric padding (right and bottom only) so the stride-2 conv halves even sizes exactly, as in
    // the original LDM autoencoder.
    if (level.downsample.defined()) h = level.downsample(at::constant_pad_nd(h, {0, 1, 0, 1}, 0.0));
  }
  h = mid_(std::move(h));
  // The output activation is SiLU whatever act_fn says (diffusers hard-codes nn.SiLU here).
  return conv_out_(at::silu(norm_out_(h)));
}

VaeDecoder::VaeDecoder(nn::ParamSource& p, const std::string& prefix, int64_t latent_channels, int64_t out_channels,
                       const VaeStackSpec& spec) {
  const std::vector<int64_t> rev(spec.block_out_channels.rbegin(), spec.block_out_channels.rend());
  conv_in_ = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv_in"), latent_channels, rev.front(), 3, 1, 1));
  mid_ =
      VaeMidBlock(p, join(prefix, "mid_block"), rev.front(), spec.norm_groups, spec.act, spec.mid_block_add_attention);
  int64_t cur = rev.front();
  for (size_t i = 0; i < rev.size(); ++i) {
    const std::string block = join(prefix, "up_blocks." + std::to_string(i));
    Level level;
    for (int64_t j = 0; j < spec.layers_per_block + 1; ++j) {
      level.resnets.emplace_back(p, join(block, "resnets." + std::to_string(j)), cur, rev[i], spec.norm_groups,
                                 spec.act);
      cur = rev[i];
    }
    if (i + 1 < rev.size())
      level.upsample = nn::PrepackedConv2d(nn::Conv2d(p, join(block, "upsamplers.0.conv"), cur, cur, 3, 1, 1));
    levels_.push_back(std::move(level));
  }
  norm_out_ = nn::GroupNorm(p, join(prefix, "conv_norm_out"), spec.norm_groups, cur, kVaeNormEps);
  conv_out_ = nn::PrepackedConv2d(nn::Conv2d(p, join(prefix, "conv_out"), cur, out_channels, 3, 1, 1));
}

at::Tensor VaeDecoder::operator()(const at::Tensor& z) const {
  at::Tensor h = mid_(conv_in_(z));
  for (const auto& level : levels_) {
    for (const auto& r : level.resnets) h = r(std::move(h));
    if (level.upsample.defined()) h = level.upsample(at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}));
  }
  return conv_out_(at::silu(norm_out_(h)));
}

}  // namespace pictor::models
