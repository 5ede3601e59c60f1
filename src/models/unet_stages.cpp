#include "models/unet_stages.hpp"

#include <ATen/ATen.h>

namespace pictor::models::unet {

namespace {

const char* kCrossDown = "CrossAttnDownBlock2D";
const char* kCrossUp = "CrossAttnUpBlock2D";

ResnetBlock2D make_resnet(nn::ParamSource& p, const UNetConfig& c, const std::string& prefix, int64_t in, int64_t out,
                          double scale) {
  return ResnetBlock2D(p, prefix, in, out, c.time_embedding_dim, c.norm_num_groups, c.norm_eps,
                       nn::parse_activation(c.act_fn, c.source + ": field 'act_fn'"), scale);
}

}  // namespace

DownBlock::DownBlock(nn::ParamSource& p, const UNetConfig& c, size_t i, int64_t in) {
  const std::string prefix = "down_blocks." + std::to_string(i);
  const int64_t out = c.block_out_channels[i];
  const bool cross = c.down_block_types[i] == kCrossDown;
  for (int64_t j = 0; j < c.layers_per_block[i]; ++j) {
    const std::string n = std::to_string(j);
    resnets.push_back(make_resnet(p, c, prefix + ".resnets." + n, j == 0 ? in : out, out, c.resnet_out_scale_factor));
    if (cross)
      attentions.emplace_back(p, prefix + ".attentions." + n, out, c.num_attention_heads[i],
                              c.transformer_layers_per_block[i], c.cross_attention_dim[i], c.norm_num_groups,
                              c.use_linear_projection, c.only_cross_attention[i]);
  }
  if (i + 1 < c.block_out_channels.size())
    downsamplers.emplace_back(p, prefix + ".downsamplers.0", out, c.downsample_padding);
}

at::Tensor DownBlock::operator()(at::Tensor x, const StageContext& ctx, std::vector<at::Tensor>& skips) const {
  for (size_t j = 0; j < resnets.size(); ++j) {
    x = resnets[j](x, ctx.temb_act);
    if (!attentions.empty()) x = attentions[j](x, ctx.text);
    skips.push_back(x);
  }
  for (const auto& d : downsamplers) {
    x = d(x);
    skips.push_back(x);
  }
  return x;
}

MidBlock::MidBlock(nn::ParamSource& p, const UNetConfig& c) {
  const size_t last = c.block_out_channels.size() - 1;
  const int64_t ch = c.block_out_channels[last];
  resnets.push_back(make_resnet(p, c, "mid_block.resnets.0", ch, ch, c.mid_block_scale_factor));
  attentions.emplace_back(p, "mid_block.attentions.0", ch, c.num_attention_heads[last],
                          c.transformer_layers_per_block[last], c.cross_attention_dim[last], c.norm_num_groups,
                          c.use_linear_projection, false);
  resnets.push_back(make_resnet(p, c, "mid_block.resnets.1", ch, ch, c.mid_block_scale_factor));
}

at::Tensor MidBlock::operator()(at::Tensor x, const StageContext& ctx) const {
  x = resnets[0](x, ctx.temb_act);
  for (size_t j = 0; j < attentions.size(); ++j) x = resnets[j + 1](attentions[j](x, ctx.text), ctx.temb_act);
  return x;
}

UpBlock::UpBlock(nn::ParamSource& p, const UNetConfig& c, size_t i) {
  // Everything per block is indexed from the top in the config; up block i mirrors down block n-1-i.
  const size_t n = c.block_out_channels.size(), mirror = n - 1 - i;
  const std::string prefix = "up_blocks." + std::to_string(i);
  const int64_t out = c.block_out_channels[mirror];
  const int64_t prev = c.block_out_channels[i == 0 ? mirror : mirror + 1];  // what comes from below
  const int64_t skip_in = c.block_out_channels[mirror == 0 ? 0 : mirror - 1];
  const int64_t layers = c.layers_per_block[mirror] + 1;
  const bool cross = c.up_block_types[i] == kCrossUp;
  for (int64_t j = 0; j < layers; ++j) {
    const std::string idx = std::to_string(j);
    const int64_t skip = j == layers - 1 ? skip_in : out;
    const int64_t res_in = j == 0 ? prev : out;
    resnets.push_back(make_resnet(p, c, prefix + ".resnets." + idx, res_in + skip, out, c.resnet_out_scale_factor));
    if (cross)
      attentions.emplace_back(p, prefix + ".attentions." + idx, out, c.num_attention_heads[mirror],
                              c.up_transformer_layers(i), c.cross_attention_dim[mirror], c.norm_num_groups,
                              c.use_linear_projection, c.only_cross_attention[mirror]);
  }
  if (i + 1 < n) upsamplers.emplace_back(p, prefix + ".upsamplers.0", out);
}

at::Tensor UpBlock::operator()(at::Tensor x, const StageContext& ctx, std::vector<at::Tensor>& skips, int64_t out_h,
                               int64_t out_w) const {
  for (size_t j = 0; j < resnets.size(); ++j) {
    at::Tensor skip = std::move(skips.back());
    skips.pop_back();
    x = resnets[j](at::cat({x, skip}, 1), ctx.temb_act);
    if (!attentions.empty()) x = attentions[j](x, ctx.text);
  }
  for (const auto& u : upsamplers) x = u(x, out_h, out_w);
  return x;
}

}  // namespace pictor::models::unet
