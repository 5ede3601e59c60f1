#pragma once
// diffusers AutoencoderTiny (TAESD): a small conv-only autoencoder that approximates the SD VAE. It has
// no GroupNorm or attention, so it is cheap, and tiling it changes nothing beyond the receptive field
// at tile borders.
//
//   encode: image [B, 3, H, W] in [-1, 1] -> latents [B, latent_channels, H/f, W/f] (raw, not scaled)
//   decode: latents -> image in roughly [-1, 1] (not clamped, exactly as diffusers returns it)
// f = 2^(number of encoder blocks - 1).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/tiled_blend.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct AutoencoderTinyConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<int64_t> encoder_block_out_channels{64, 64, 64, 64};
  std::vector<int64_t> decoder_block_out_channels{64, 64, 64, 64};
  std::vector<int64_t> num_encoder_blocks{1, 3, 3, 3};
  std::vector<int64_t> num_decoder_blocks{3, 3, 3, 1};
  int64_t latent_channels = 4;
  std::string act_fn = "relu";
  std::string upsample_fn = "nearest";
  int64_t upsampling_scaling_factor = 2;
  double latent_magnitude = 3.0;
  double latent_shift = 0.5;
  double scaling_factor = 1.0;
  bool force_upcast = false;
  std::string source;

  static AutoencoderTinyConfig from_json(const JsonConfig& cfg);
  int64_t downscale_factor() const;
};

class AutoencoderTiny {
 public:
  AutoencoderTiny(const AutoencoderTinyConfig& config, nn::ParamSource& params);
  static std::unique_ptr<AutoencoderTiny> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  at::Tensor encode(const at::Tensor& image) const;
  at::Tensor decode(const at::Tensor& latents) const;

  // Raw latents -> [0, 1] (as stored in an RGBA preview image) and back, as diffusers'
  // scale_latents / unscale_latents.
  at::Tensor scale_latents(const at::Tensor& latents) const;
  at::Tensor unscale_latents(const at::Tensor& scaled) const;

  // Tiling: forced on/off, or automatic above `max_untiled_pixels` (default 1024*1024: TAESD is light).
  void set_tiling(bool enabled, int64_t tile_latent = 64, int64_t overlap_latent = 8);
  void set_auto_tiling(int64_t max_untiled_pixels = 1024 * 1024);
  bool uses_tiling(int64_t height_px, int64_t width_px) const;

  const AutoencoderTinyConfig& config() const { return config_; }

 private:
  // AutoencoderTinyBlock: three 3x3 convs with activations between, plus a skip, fused by ReLU.
  struct Block {
    nn::Conv2d conv0, conv1, conv2, skip;  // skip undefined when in == out
  };
  // One element of diffusers' nn.Sequential `layers`.
  struct Layer {
    enum Kind { Conv, Act, TinyBlock, Upsample } kind;
    nn::Conv2d conv;
    Block block;
  };
  Block make_block(nn::ParamSource& p, const std::string& prefix, int64_t in, int64_t out) const;
  at::Tensor run_block(const Block& b, const at::Tensor& x) const;
  at::Tensor run_layers(const std::vector<Layer>& layers, const at::Tensor& x) const;
  at::Tensor encode_untiled(const at::Tensor& image) const;
  at::Tensor decode_untiled(const at::Tensor& latents) const;

  AutoencoderTinyConfig config_;
  nn::Activation act_ = nn::Activation::ReLU;
  std::vector<Layer> encoder_, decoder_;
  TilingPolicy tiling_{1024 * 1024};
};

}  // namespace pictor::models
