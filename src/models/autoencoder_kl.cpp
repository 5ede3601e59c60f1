#include "models/autoencoder_kl.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "models/tiled_blend.hpp"

namespace pictor::models {

namespace {
std::optional<std::vector<double>> optional_list(const JsonConfig& cfg, const std::string& key) {
  if (!cfg.has(key)) return std::nullopt;
  return cfg.get<std::vector<double>>(key);
}
}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::from_json(const JsonConfig& cfg) {
  AutoencoderKLConfig c;
  c.source = cfg.source();
  c.in_channels = cfg.get<int64_t>("in_channels", c.in_channels);
  c.out_channels = cfg.get<int64_t>("out_channels", c.out_channels);
  c.latent_channels = cfg.get<int64_t>("latent_channels", c.latent_channels);
  c.block_out_channels = cfg.get<std::vector<int64_t>>("block_out_channels", c.block_out_channels);
  c.layers_per_block = cfg.get<int64_t>("layers_per_block", c.layers_per_block);
  c.norm_num_groups = cfg.get<int64_t>("norm_num_groups", c.norm_num_groups);
  c.act_fn = cfg.get<std::string>("act_fn", c.act_fn);
  c.scaling_factor = cfg.get<double>("scaling_factor", c.scaling_factor);
  if (cfg.has("shift_factor")) c.shift_factor = cfg.get<double>("shift_factor");
  if (cfg.has("sample_size")) {
    const json& s = cfg.raw().at("sample_size");
    if (s.is_array() && !s.empty() && s[0].is_number_integer())
      c.sample_size = s[0].get<int64_t>();
    else
      c.sample_size = cfg.get<int64_t>("sample_size");
  }
  c.down_block_types = cfg.get<std::vector<std::string>>("down_block_types", c.down_block_types);
  c.up_block_types = cfg.get<std::vector<std::string>>("up_block_types", c.up_block_types);
  c.mid_block_add_attention = cfg.get<bool>("mid_block_add_attention", c.mid_block_add_attention);
  c.force_upcast = cfg.get<bool>("force_upcast", c.force_upcast);
  c.use_quant_conv = cfg.get<bool>("use_quant_conv", c.use_quant_conv);
  c.use_post_quant_conv = cfg.get<bool>("use_post_quant_conv", c.use_post_quant_conv);
  c.latents_mean = optional_list(cfg, "latents_mean");
  c.latents_std = optional_list(cfg, "latents_std");

  for (const auto& t : c.down_block_types)
    if (t != "DownEncoderBlock2D")
      throw Unsupported(c.source + ": field 'down_block_types': block type '" + t +
                        "' (only DownEncoderBlock2D is implemented)");
  for (const auto& t : c.up_block_types)
    if (t != "UpDecoderBlock2D")
      throw Unsupported(c.source + ": field 'up_block_types': block type '" + t +
                        "' (only UpDecoderBlock2D is implemented)");
  const size_t levels = c.block_out_channels.size();
  if (levels == 0) cfg.fail("block_out_channels", "must not be empty");
  if (c.down_block_types.size() != levels)
    cfg.fail("down_block_types", "has " + std::to_string(c.down_block_types.size()) +
                                     " entries but block_out_channels has " + std::to_string(levels));
  if (c.up_block_types.size() != levels)
    cfg.fail("up_block_types", "has " + std::to_string(c.up_block_types.size()) +
                                   " entries but block_out_channels has " + std::to_string(levels));
  for (int64_t ch : c.block_out_channels)
    if (ch <= 0 || ch % c.norm_num_groups != 0)
      cfg.fail("block_out_channels", "entry " + std::to_string(ch) + " is not a positive multiple of norm_num_groups " +
                                         std::to_string(c.norm_num_groups));
  if (c.layers_per_block < 1) cfg.fail("layers_per_block", "must be >= 1");
  if (c.in_channels < 1 || c.out_channels < 1 || c.latent_channels < 1)
    throw Error(c.source + ": channel counts (in_channels, out_channels, latent_channels) must be >= 1");
  nn::parse_activation(c.act_fn, c.source + ": field 'act_fn'");
  return c;
}

int64_t AutoencoderKLConfig::downscale_factor() const {
  return int64_t{1} << (block_out_channels.size() - 1);
}

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& config, nn::ParamSource& p) : config_(config) {
  VaeStackSpec spec;
  spec.block_out_channels = config.block_out_channels;
  spec.layers_per_block = config.layers_per_block;
  spec.norm_groups = config.norm_num_groups;
  spec.act = nn::parse_activation(config.act_fn, config.source + ": field 'act_fn'");
  spec.mid_block_add_attention = config.mid_block_add_attention;
  const int64_t L = config.latent_channels;
  encoder_ = VaeEncoder(p, "encoder", config.in_channels, L, spec);
  decoder_ = VaeDecoder(p, "decoder", L, config.out_channels, spec);
  if (config.use_quant_conv) quant_conv_ = nn::Conv2d(p, "quant_conv", 2 * L, 2 * L, 1);
  if (config.use_post_quant_conv) post_quant_conv_ = nn::Conv2d(p, "post_quant_conv", L, L, 1);
}

std::unique_ptr<AutoencoderKL> AutoencoderKL::load(const std::filesystem::path& dir, c10::Device device) {
  const AutoencoderKLConfig cfg = AutoencoderKLConfig::from_json(JsonConfig::load(dir / "config.json"));
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  return std::make_unique<AutoencoderKL>(cfg, params);
}

AutoencoderKL::Posterior AutoencoderKL::Posterior::from_moments(const at::Tensor& moments) {
  Posterior p;
  const auto halves = moments.chunk(2, 1);
  p.mean = halves[0];
  // Same clamp as diffusers: keeps exp() finite for degenerate encoder outputs.
  p.logvar = halves[1].clamp(-30.0, 20.0);
  p.std = at::exp(0.5 * p.logvar);
  return p;
}

at::Tensor AutoencoderKL::Posterior::sample(std::optional<at::Generator> gen) const {
  const c10::optional<at::Generator> g = gen ? c10::optional<at::Generator>(*gen) : c10::nullopt;
  return mean + std * at::randn(mean.sizes(), g, mean.options());
}

at::Tensor AutoencoderKL::run_encoder(const at::Tensor& image) const {
  return encoder_(image);
}

at::Tensor AutoencoderKL::quant_conv(const at::Tensor& h) const {
  return quant_conv_.weight.defined() ? quant_conv_(h) : h;
}

at::Tensor AutoencoderKL::post_quant_conv(const at::Tensor& latents) const {
  return post_quant_conv_.weight.defined() ? post_quant_conv_(latents) : latents;
}

at::Tensor AutoencoderKL::run_decoder(const at::Tensor& z) const {
  return decoder_(z);
}

at::Tensor AutoencoderKL::encode_moments(const at::Tensor& image) const {
  if (image.dim() != 4 || image.size(1) != config_.in_channels)
    throw Error("AutoencoderKL::encode: expected an image [B, " + std::to_string(config_.in_channels) +
                ", H, W], got " + nn::shape_str(image.sizes().vec()));
  const int64_t f = config_.downscale_factor();
  auto one = [this](const at::Tensor& x) { return quant_conv(encoder_(x)); };
  // Tiles must start on latent pixel boundaries; other sizes run untiled.
  if (uses_tiling(image.size(2), image.size(3)) && image.size(2) % f == 0 && image.size(3) % f == 0)
    return tiled_apply(image, TileGrid{tiling_.tile_latent, tiling_.overlap_latent, f, 1}, one);
  return one(image);
}

AutoencoderKL::Posterior AutoencoderKL::encode(const at::Tensor& image) const {
  return Posterior::from_moments(encode_moments(image));
}

at::Tensor AutoencoderKL::decode(const at::Tensor& latents) const {
  if (latents.dim() != 4 || latents.size(1) != config_.latent_channels)
    throw Error("AutoencoderKL::decode: expected latents [B, " + std::to_string(config_.latent_channels) +
                ", h, w], got " + nn::shape_str(latents.sizes().vec()));
  const int64_t f = config_.downscale_factor();
  auto one = [this](const at::Tensor& z) { return decoder_(post_quant_conv(z)); };
  if (uses_tiling(latents.size(2) * f, latents.size(3) * f))
    return tiled_apply(latents, TileGrid{tiling_.tile_latent, tiling_.overlap_latent, 1, f}, one);
  return one(latents);
}

void AutoencoderKL::set_tiling(bool enabled, int64_t tile_latent, int64_t overlap_latent) {
  tiling_.set(enabled, tile_latent, overlap_latent, "AutoencoderKL");
}

void AutoencoderKL::set_auto_tiling(int64_t max_untiled_pixels) {
  tiling_.set_auto(max_untiled_pixels);
}

bool AutoencoderKL::uses_tiling(int64_t height_px, int64_t width_px) const {
  return tiling_.applies(height_px, width_px);
}

}  // namespace pictor::models
