#include "models/unet2d.hpp"

#include <ATen/ATen.h>

#include <sstream>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "models/unet_blocks.hpp"
#include "models/unet_stages.hpp"
#include "nn/layers.hpp"

namespace pictor::models {

using namespace unet;

struct UNet2DConditionModel::Impl {
  nn::Activation act = nn::Activation::SiLU;
  nn::PrepackedConv2d conv_in;
  TimestepEmbedding time_embedding;
  std::vector<DownBlock> down_blocks;
  std::vector<MidBlock> mid_block;  // empty when mid_block_type is null
  std::vector<UpBlock> up_blocks;
  nn::GroupNorm conv_norm_out;
  nn::PrepackedConv2d conv_out;
};

UNet2DConditionModel::UNet2DConditionModel(const UNetConfig& c, nn::ParamSource& p)
    : config_(c), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.act = nn::parse_activation(c.act_fn, c.source + ": field 'act_fn'");
  const int64_t ch0 = c.block_out_channels[0];
  m.conv_in = nn::PrepackedConv2d(
      nn::Conv2d(p, "conv_in", c.in_channels, ch0, c.conv_in_kernel, 1, (c.conv_in_kernel - 1) / 2));
  m.time_embedding = TimestepEmbedding(p, "time_embedding", ch0, c.time_embedding_dim, m.act);
  int64_t in = ch0;
  for (size_t i = 0; i < c.block_out_channels.size(); ++i) {
    m.down_blocks.emplace_back(p, c, i, in);
    in = c.block_out_channels[i];
  }
  if (!c.mid_block_type.empty()) m.mid_block.emplace_back(p, c);
  for (size_t i = 0; i < c.block_out_channels.size(); ++i) m.up_blocks.emplace_back(p, c, i);
  m.conv_norm_out = nn::GroupNorm(p, "conv_norm_out", c.norm_num_groups, ch0, c.norm_eps);
  m.conv_out = nn::PrepackedConv2d(
      nn::Conv2d(p, "conv_out", ch0, c.out_channels, c.conv_out_kernel, 1, (c.conv_out_kernel - 1) / 2));
}

UNet2DConditionModel::~UNet2DConditionModel() = default;
UNet2DConditionModel::UNet2DConditionModel(UNet2DConditionModel&&) noexcept = default;
UNet2DConditionModel& UNet2DConditionModel::operator=(UNet2DConditionModel&&) noexcept = default;

std::unique_ptr<UNet2DConditionModel> UNet2DConditionModel::load(const std::filesystem::path& dir, c10::Device device) {
  UNetConfig config = UNetConfig::from_json(JsonConfig::load(dir / "config.json"));
  TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<UNet2DConditionModel>(config, params);
  auto unused = params.unused();
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
    throw Error(store.origin() + ": " + std::to_string(unused.size()) + " tensor(s) not used by the model that " +
                config.source + " describes (e.g. " + list + "); the config does not match the weights");
  }
  return model;
}

namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

at::Tensor UNet2DConditionModel::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                         const at::Tensor& encoder_hidden_states,
                                         std::map<std::string, at::Tensor>* debug) const {
  const UNetConfig& c = config_;
  const Impl& m = *impl_;
  if (sample.dim() != 4 || sample.size(1) != c.in_channels)
    throw Error("UNet: sample must be [B, " + std::to_string(c.in_channels) + ", H, W] (in_channels of " + c.source +
                "), got " + shape_of(sample));
  const int64_t B = sample.size(0);
  if (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) != B)
    throw Error("UNet: encoder_hidden_states must be [" + std::to_string(B) + ", S, D], got " +
                shape_of(encoder_hidden_states));
  const size_t n = c.block_out_channels.size();
  for (size_t i = 0; i < n; ++i) {
    const bool attends = c.down_block_types[i] == "CrossAttnDownBlock2D" ||
                         c.up_block_types[n - 1 - i] == "CrossAttnUpBlock2D" || (i == n - 1 && !m.mid_block.empty());
    if (attends && encoder_hidden_states.size(2) != c.cross_attention_dim[i])
      throw Error("UNet: encoder_hidden_states width " + std::to_string(encoder_hidden_states.size(2)) +
                  " != cross_attention_dim " + std::to_string(c.cross_attention_dim[i]) + " of " + c.source);
  }
  if (timestep.numel() != 1 && !(timestep.dim() == 1 && timestep.size(0) == B))
    throw Error("UNet: timestep must be a scalar or [" + std::to_string(B) + "], got " + shape_of(timestep));

  // Timesteps are broadcast to the batch, embedded in float32 and projected.
  at::Tensor t = timestep.to(sample.device()).reshape({-1}).expand({B});
  at::Tensor emb = m.time_embedding(
      timestep_features(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift).to(sample.scalar_type()));
  if (debug) (*debug)["time_embedding"] = emb;
  const at::Tensor temb_act = nn::activate(emb, m.act);
  const StageContext ctx{temb_act, encoder_hidden_states};

  at::Tensor x = c.center_input_sample ? sample * 2.0 - 1.0 : sample;
  x = m.conv_in(x);
  if (debug) (*debug)["conv_in"] = x;
  std::vector<at::Tensor> skips{x};
  for (size_t i = 0; i < m.down_blocks.size(); ++i) {
    x = m.down_blocks[i](x, ctx, skips);
    if (debug) (*debug)["down_blocks." + std::to_string(i)] = x;
  }
  if (!m.mid_block.empty()) {
    x = m.mid_block[0](x, ctx);
    if (debug) (*debug)["mid_block"] = x;
  }
  for (size_t i = 0; i < m.up_blocks.size(); ++i) {
    const UpBlock& up = m.up_blocks[i];
    // The upsampler restores the size of the skip the next block consumes first, which also covers
    // sizes that are not a multiple of 2^(number of downsamplers) (diffusers' forward_upsample_size).
    int64_t out_h = 0, out_w = 0;
    if (!up.upsamplers.empty()) {
      const at::Tensor& next_skip = skips[skips.size() - 1 - up.resnets.size()];
      out_h = next_skip.size(2), out_w = next_skip.size(3);
    }
    x = up(x, ctx, skips, out_h, out_w);
    if (debug) (*debug)["up_blocks." + std::to_string(i)] = x;
  }
  return m.conv_out(nn::activate(m.conv_norm_out(x), m.act));
}

}  // namespace pictor::models
