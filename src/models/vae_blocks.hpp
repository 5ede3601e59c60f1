#pragma once
// Building blocks of diffusers' KL autoencoder (models/autoencoders/vae.py): the Encoder and Decoder
// stacks, made of ResnetBlock2D without a time embedding, a single-head mid-block self-attention,
// strided-conv downsampling and nearest-neighbour upsampling. Parameter names follow the diffusers
// checkpoint layout, so a module built under prefix "encoder" asks for "encoder.down_blocks.0...".
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "nn/conv_prepack.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

// ResnetBlock2D with temb_channels=None: norm1 -> act -> conv1 -> norm2 -> act -> conv2, plus a 1x1
// conv_shortcut when the channel count changes.
struct VaeResnetBlock {
  nn::GroupNorm norm1, norm2;
  nn::PrepackedConv2d conv1, conv2, conv_shortcut;  // conv_shortcut undefined when in == out
  nn::Activation act = nn::Activation::SiLU;
  VaeResnetBlock() = default;
  VaeResnetBlock(nn::ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t groups,
                 nn::Activation act);
  // Takes x by value: pass std::move(h) so the block can free its input early.
  at::Tensor operator()(at::Tensor x) const;
};

// The mid-block attention: GroupNorm, one head spanning all channels, residual connection. Accepts
// the current names (group_norm, to_q, to_k, to_v, to_out.0) and the legacy diffusers ones (query,
// key, value, proj_attn) that older converted checkpoints still carry.
struct VaeAttention {
  nn::GroupNorm norm;
  nn::Linear to_q, to_k, to_v, to_out;
  VaeAttention() = default;
  VaeAttention(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t groups);
  at::Tensor operator()(const at::Tensor& x) const;
};

// UNetMidBlock2D as the VAE uses it: resnet, optional attention, resnet.
struct VaeMidBlock {
  VaeResnetBlock resnet0, resnet1;
  VaeAttention attention;
  bool has_attention = true;
  VaeMidBlock() = default;
  VaeMidBlock(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t groups, nn::Activation act,
              bool add_attention);
  at::Tensor operator()(at::Tensor x) const;
};

// Architecture shared by encoder and decoder, taken from AutoencoderKLConfig.
struct VaeStackSpec {
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 2;
  int64_t norm_groups = 32;
  nn::Activation act = nn::Activation::SiLU;
  bool mid_block_add_attention = true;
};

// Encoder: conv_in, DownEncoderBlock2D per level (downsampling after all but the last: zero pad right
// and bottom by one, then a stride-2 3x3 conv), mid block, GroupNorm, SiLU, conv_out to 2*latent
// channels (mean and log-variance).
class VaeEncoder {
 public:
  VaeEncoder() = default;
  VaeEncoder(nn::ParamSource& p, const std::string& prefix, int64_t in_channels, int64_t latent_channels,
             const VaeStackSpec& spec);
  at::Tensor operator()(const at::Tensor& image) const;

 private:
  struct Level {
    std::vector<VaeResnetBlock> resnets;
    nn::PrepackedConv2d downsample;  // undefined on the last level
  };
  nn::PrepackedConv2d conv_in_, conv_out_;
  std::vector<Level> levels_;
  VaeMidBlock mid_;
  nn::GroupNorm norm_out_;
};

// Decoder: conv_in, mid block, UpDecoderBlock2D per level in reverse channel order (layers_per_block+1
// resnets, then nearest x2 + 3x3 conv on all but the last), GroupNorm, SiLU, conv_out.
class VaeDecoder {
 public:
  VaeDecoder() = default;
  VaeDecoder(nn::ParamSource& p, const std::string& prefix, int64_t latent_channels, int64_t out_channels,
             const VaeStackSpec& spec);
  at::Tensor operator()(const at::Tensor& z) const;

 private:
  struct Level {
    std::vector<VaeResnetBlock> resnets;
    nn::PrepackedConv2d upsample;  // undefined on the last level
  };
  nn::PrepackedConv2d conv_in_, conv_out_;
  VaeMidBlock mid_;
  std::vector<Level> levels_;
  nn::GroupNorm norm_out_;
};

}  // namespace pictor::models
