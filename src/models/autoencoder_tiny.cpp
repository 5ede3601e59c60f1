#include "models/autoencoder_tiny.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "models/tiled_blend.hpp"

namespace pictor::models {

using nn::join;

AutoencoderTinyConfig AutoencoderTinyConfig::from_json(const JsonConfig& cfg) {
  AutoencoderTinyConfig c;
  c.source = cfg.source();
  c.in_channels = cfg.get<int64_t>("in_channels", c.in_channels);
  c.out_channels = cfg.get<int64_t>("out_channels", c.out_channels);
  c.encoder_block_out_channels =
      cfg.get<std::vector<int64_t>>("encoder_block_out_channels", c.encoder_block_out_channels);
  c.decoder_block_out_channels =
      cfg.get<std::vector<int64_t>>("decoder_block_out_channels", c.decoder_block_out_channels);
  c.num_encoder_blocks = cfg.get<std::vector<int64_t>>("num_encoder_blocks", c.num_encoder_blocks);
  c.num_decoder_blocks = cfg.get<std::vector<int64_t>>("num_decoder_blocks", c.num_decoder_blocks);
  c.latent_channels = cfg.get<int64_t>("latent_channels", c.latent_channels);
  c.act_fn = cfg.get<std::string>("act_fn", c.act_fn);
  c.upsample_fn = cfg.get<std::string>("upsample_fn", c.upsample_fn);
  c.upsampling_scaling_factor = cfg.get<int64_t>("upsampling_scaling_factor", c.upsampling_scaling_factor);
  c.latent_magnitude = cfg.get<double>("latent_magnitude", c.latent_magnitude);
  c.latent_shift = cfg.get<double>("latent_shift", c.latent_shift);
  c.scaling_factor = cfg.get<double>("scaling_factor", c.scaling_factor);
  c.force_upcast = cfg.get<bool>("force_upcast", c.force_upcast);

  if (c.encoder_block_out_channels.empty()) cfg.fail("encoder_block_out_channels", "must not be empty");
  if (c.decoder_block_out_channels.empty()) cfg.fail("decoder_block_out_channels", "must not be empty");
  if (c.num_encoder_blocks.size() != c.encoder_block_out_channels.size())
    cfg.fail("num_encoder_blocks", "must have as many entries as encoder_block_out_channels");
  if (c.num_decoder_blocks.size() != c.decoder_block_out_channels.size())
    cfg.fail("num_decoder_blocks", "must have as many entries as decoder_block_out_channels");
  // diffusers' EncoderTiny feeds each stride-2 conv with the level's own channel count (it only runs
  // when neighbouring levels agree), so differing channels have no diffusers behaviour to follow.
  for (size_t i = 1; i < c.encoder_block_out_channels.size(); ++i)
    if (c.encoder_block_out_channels[i] != c.encoder_block_out_channels[i - 1])
      throw Unsupported(c.source + ": field 'encoder_block_out_channels': levels with different channel counts");
  for (size_t i = 1; i < c.decoder_block_out_channels.size(); ++i)
    if (c.decoder_block_out_channels[i] != c.decoder_block_out_channels[i - 1])
      throw Unsupported(c.source + ": field 'decoder_block_out_channels': levels with different channel counts");
  if (c.upsample_fn != "nearest")
    throw Unsupported(c.source + ": field 'upsample_fn': '" + c.upsample_fn + "' (only nearest is implemented)");
  if (c.upsampling_scaling_factor < 1) cfg.fail("upsampling_scaling_factor", "must be >= 1");
  nn::parse_activation(c.act_fn, c.source + ": field 'act_fn'");
  return c;
}

int64_t AutoencoderTinyConfig::downscale_factor() const {
  return int64_t{1} << (encoder_block_out_channels.size() - 1);
}

AutoencoderTiny::Block AutoencoderTiny::make_block(nn::ParamSource& p, const std::string& prefix, int64_t in,
                                                   int64_t out) const {
  Block b;
  b.conv0 = nn::Conv2d(p, join(prefix, "conv.0"), in, out, 3, 1, 1);
  b.conv1 = nn::Conv2d(p, join(prefix, "conv.2"), out, out, 3, 1, 1);
  b.conv2 = nn::Conv2d(p, join(prefix, "conv.4"), out, out, 3, 1, 1);
  if (in != out) b.skip = nn::Conv2d(p, join(prefix, "skip"), in, out, 1, 1, 0, /*has_bias=*/false);
  return b;
}

AutoencoderTiny::AutoencoderTiny(const AutoencoderTinyConfig& config, nn::ParamSource& p) : config_(config) {
  act_ = nn::parse_activation(config.act_fn, config.source + ": field 'act_fn'");
  // Layer names are indices into diffusers' nn.Sequential, where activations and upsamplers take an
  // index too.
  auto name = [](const std::string& stack, size_t i) { return stack + ".layers." + std::to_string(i); };
  auto conv = [&](const std::string& n, int64_t in, int64_t out, int64_t stride, bool bias) {
    return Layer{Layer::Conv, nn::Conv2d(p, n, in, out, 3, stride, 1, bias), {}};
  };

  const auto& ec = config.encoder_block_out_channels;
  for (size_t i = 0; i < ec.size(); ++i) {
    if (i == 0)
      encoder_.push_back(conv(name("encoder", encoder_.size()), config.in_channels, ec[0], 1, true));
    else
      encoder_.push_back(conv(name("encoder", encoder_.size()), ec[i], ec[i], 2, false));
    for (int64_t j = 0; j < config.num_encoder_blocks[i]; ++j)
      encoder_.push_back({Layer::TinyBlock, {}, make_block(p, name("encoder", encoder_.size()), ec[i], ec[i])});
  }
  encoder_.push_back(conv(name("encoder", encoder_.size()), ec.back(), config.latent_channels, 1, true));

  const auto& dc = config.decoder_block_out_channels;
  decoder_.push_back(conv(name("decoder", 0), config.latent_channels, dc[0], 1, true));
  decoder_.push_back({Layer::Act, {}, {}});
  for (size_t i = 0; i < dc.size(); ++i) {
    const bool last = i + 1 == dc.size();
    for (int64_t j = 0; j < config.num_decoder_blocks[i]; ++j)
      decoder_.push_back({Layer::TinyBlock, {}, make_block(p, name("decoder", decoder_.size()), dc[i], dc[i])});
    if (!last) decoder_.push_back({Layer::Upsample, {}, {}});
    decoder_.push_back(conv(name("decoder", decoder_.size()), dc[i], last ? config.out_channels : dc[i], 1, last));
  }
}

std::unique_ptr<AutoencoderTiny> AutoencoderTiny::load(const std::filesystem::path& dir, c10::Device device) {
  const AutoencoderTinyConfig cfg = AutoencoderTinyConfig::from_json(JsonConfig::load(dir / "config.json"));
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  return std::make_unique<AutoencoderTiny>(cfg, params);
}

at::Tensor AutoencoderTiny::run_block(const Block& b, const at::Tensor& x) const {
  at::Tensor h = b.conv2(nn::activate(b.conv1(nn::activate(b.conv0(x), act_)), act_));
  // The fuse activation is ReLU whatever act_fn is (diffusers hard-codes nn.ReLU).
  return at::relu(h + (b.skip.weight.defined() ? b.skip(x) : x));
}

at::Tensor AutoencoderTiny::run_layers(const std::vector<Layer>& layers, const at::Tensor& x) const {
  at::Tensor h = x;
  const int64_t f = config_.upsampling_scaling_factor;
  for (const auto& l : layers) {
    switch (l.kind) {
      case Layer::Conv: h = l.conv(h); break;
      case Layer::Act: h = nn::activate(h, act_); break;
      case Layer::TinyBlock: h = run_block(l.block, h); break;
      case Layer::Upsample: h = at::upsample_nearest2d(h, {h.size(2) * f, h.size(3) * f}); break;
    }
  }
  return h;
}

at::Tensor AutoencoderTiny::encode_untiled(const at::Tensor& image) const {
  // TAESD works on images in [0, 1]; the diffusers interface takes [-1, 1].
  return run_layers(encoder_, (image + 1.0) / 2.0);
}

at::Tensor AutoencoderTiny::decode_untiled(const at::Tensor& latents) const {
  // Soft clamp of the latents to (-3, 3) before decoding, as TAESD was trained.
  const at::Tensor z = at::tanh(latents / 3.0) * 3.0;
  return run_layers(decoder_, z) * 2.0 - 1.0;
}

at::Tensor AutoencoderTiny::encode(const at::Tensor& image) const {
  if (image.dim() != 4 || image.size(1) != config_.in_channels)
    throw Error("AutoencoderTiny::encode: expected an image [B, " + std::to_string(config_.in_channels) +
                ", H, W], got " + nn::shape_str(image.sizes().vec()));
  const int64_t f = config_.downscale_factor();
  auto one = [this](const at::Tensor& x) { return encode_untiled(x); };
  if (uses_tiling(image.size(2), image.size(3)) && image.size(2) % f == 0 && image.size(3) % f == 0)
    return tiled_apply(image, TileGrid{tiling_.tile_latent, tiling_.overlap_latent, f, 1}, one);
  return one(image);
}

at::Tensor AutoencoderTiny::decode(const at::Tensor& latents) const {
  if (latents.dim() != 4 || latents.size(1) != config_.latent_channels)
    throw Error("AutoencoderTiny::decode: expected latents [B, " + std::to_string(config_.latent_channels) +
                ", h, w], got " + nn::shape_str(latents.sizes().vec()));
  int64_t up = 1;
  for (size_t i = 1; i < config_.decoder_block_out_channels.size(); ++i) up *= config_.upsampling_scaling_factor;
  auto one = [this](const at::Tensor& z) { return decode_untiled(z); };
  if (uses_tiling(latents.size(2) * up, latents.size(3) * up))
    return tiled_apply(latents, TileGrid{tiling_.tile_latent, tiling_.overlap_latent, 1, up}, one);
  return one(latents);
}

at::Tensor AutoencoderTiny::scale_latents(const at::Tensor& latents) const {
  return (latents / (2.0 * config_.latent_magnitude) + config_.latent_shift).clamp(0.0, 1.0);
}

at::Tensor AutoencoderTiny::unscale_latents(const at::Tensor& scaled) const {
  return (scaled - config_.latent_shift) * (2.0 * config_.latent_magnitude);
}

void AutoencoderTiny::set_tiling(bool enabled, int64_t tile_latent, int64_t overlap_latent) {
  tiling_.set(enabled, tile_latent, overlap_latent, "AutoencoderTiny");
}

void AutoencoderTiny::set_auto_tiling(int64_t max_untiled_pixels) {
  tiling_.set_auto(max_untiled_pixels);
}

bool AutoencoderTiny::uses_tiling(int64_t height_px, int64_t width_px) const {
  return tiling_.applies(height_px, width_px);
}

}  // namespace pictor::models
