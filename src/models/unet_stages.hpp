#pragma once
// The UNet's resolution stages: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn and
// CrossAttnUpBlock2D / UpBlock2D. A "CrossAttn" block is the plain one with a Transformer2DModel after
// every resnet, so one struct per direction covers both (`attentions` is empty for the plain blocks).
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "models/unet_blocks.hpp"
#include "models/unet_config.hpp"
#include "models/unet_transformer.hpp"

namespace pictor::models::unet {

// What a stage needs besides its own parameters.
struct StageContext {
  const at::Tensor& temb_act;  // act(time embedding) [B, temb_dim]
  const at::Tensor& text;      // encoder_hidden_states [B, S, cross_dim]
};

struct DownBlock {
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> attentions;
  std::vector<Downsample2D> downsamplers;  // none for the last block
  DownBlock() = default;
  // Block `i` of config `c`, taking `in` channels.
  DownBlock(nn::ParamSource& p, const UNetConfig& c, size_t i, int64_t in);
  // Appends every intermediate state to `skips` (the up blocks consume them) and returns the last.
  at::Tensor operator()(at::Tensor x, const StageContext& ctx, std::vector<at::Tensor>& skips) const;
};

struct MidBlock {
  std::vector<ResnetBlock2D> resnets;  // attentions.size() + 1
  std::vector<Transformer2DModel> attentions;
  MidBlock() = default;
  MidBlock(nn::ParamSource& p, const UNetConfig& c);
  at::Tensor operator()(at::Tensor x, const StageContext& ctx) const;
};

struct UpBlock {
  std::vector<ResnetBlock2D> resnets;
  std::vector<Transformer2DModel> attentions;
  std::vector<Upsample2D> upsamplers;  // none for the last block
  UpBlock() = default;
  // Up block `i` of config `c` (counted from the bottom of the UNet, as in the checkpoint names).
  UpBlock(nn::ParamSource& p, const UNetConfig& c, size_t i);
  // Pops resnets.size() states off `skips`, concatenating each to the input of one resnet; the upsampler
  // (if any) resizes to out_h x out_w.
  at::Tensor operator()(at::Tensor x, const StageContext& ctx, std::vector<at::Tensor>& skips, int64_t out_h,
                        int64_t out_w) const;
};

}  // namespace pictor::models::unet
