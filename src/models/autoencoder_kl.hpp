#pragma once
// diffusers AutoencoderKL (the Stable Diffusion VAE), built from its config.json.
//
//   image [B, 3, H, W] in [-1, 1] --encode--> Posterior over latents [B, latent_channels, H/f, W/f]
//   latents --decode--> image, f = 2^(levels - 1) (8 for SD).
//
// decode() takes the latents as the VAE sees them: a pipeline divides its latents by scaling_factor
// (and adds shift_factor, if any) before calling it, as diffusers' pipelines do.
//
// Large images are processed in overlapping tiles (see tiled_blend.hpp): by default automatically above
// 768x768 pixels, or forced on/off with set_tiling(). Tiled output differs slightly from untiled output
// (GroupNorm statistics and the mid-block attention see one tile at a time); the overlaps are
// cross-faded so there are no seams.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/tiled_blend.hpp"
#include "models/vae_blocks.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 4;
  std::vector<int64_t> block_out_channels{64};
  int64_t layers_per_block = 1;
  int64_t norm_num_groups = 32;
  std::string act_fn = "silu";
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;  // SD3/Flux VAEs; null for SD1/SD2/SDXL
  int64_t sample_size = 32;            // first entry when the config gives a list
  std::vector<std::string> down_block_types{"DownEncoderBlock2D"};
  std::vector<std::string> up_block_types{"UpDecoderBlock2D"};
  bool mid_block_add_attention = true;
  bool force_upcast = true;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  std::optional<std::vector<double>> latents_mean, latents_std;  // SDXL-era per-channel stats, if given
  std::string source;                                            // file the config came from (for errors)

  // Parses diffusers' config.json; missing fields take diffusers' defaults. Throws Unsupported for
  // block types other than DownEncoderBlock2D / UpDecoderBlock2D, naming the file and field.
  static AutoencoderKLConfig from_json(const JsonConfig& cfg);
  // Spatial downsampling factor: 2^(levels - 1).
  int64_t downscale_factor() const;
};

class AutoencoderKL {
 public:
  AutoencoderKL(const AutoencoderKLConfig& config, nn::ParamSource& params);
  // Loads config.json and the weights from a diffusers `vae` folder. Errors name the folder/tensor.
  static std::unique_ptr<AutoencoderKL> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  // Diagonal Gaussian over the latents (diffusers' DiagonalGaussianDistribution).
  struct Posterior {
    at::Tensor mean, logvar, std;  // logvar clamped to [-30, 20]
    // mean + std * N(0, 1) drawn from `gen` (the default generator when undefined).
    at::Tensor sample(std::optional<at::Generator> gen = std::nullopt) const;
    // Builds the distribution from moments [B, 2*latent, h, w] (mean channels first).
    static Posterior from_moments(const at::Tensor& moments);
  };

  Posterior encode(const at::Tensor& image) const;
  at::Tensor decode(const at::Tensor& latents) const;

  // Intermediate stages (the golden checks compare them one by one).
  at::Tensor run_encoder(const at::Tensor& image) const;        // Encoder output, before quant_conv
  at::Tensor quant_conv(const at::Tensor& h) const;             // identity if use_quant_conv is false
  at::Tensor encode_moments(const at::Tensor& image) const;     // quant_conv(encoder(image)), tiled if enabled
  at::Tensor post_quant_conv(const at::Tensor& latents) const;  // identity if use_post_quant_conv is false
  at::Tensor run_decoder(const at::Tensor& z) const;            // Decoder on post_quant_conv output

  // Forces tiling on or off; tile size and minimum overlap are in latent pixels (x8 in image pixels).
  void set_tiling(bool enabled, int64_t tile_latent = 64, int64_t overlap_latent = 8);
  // Back to the default: tile only when the image exceeds `max_untiled_pixels` (768*768).
  void set_auto_tiling(int64_t max_untiled_pixels = 768 * 768);
  // Whether an image of h x w pixels would be processed in tiles under the current setting.
  bool uses_tiling(int64_t height_px, int64_t width_px) const;

  const AutoencoderKLConfig& config() const { return config_; }

 private:
  AutoencoderKLConfig config_;
  VaeEncoder encoder_;
  VaeDecoder decoder_;
  nn::Conv2d quant_conv_, post_quant_conv_;
  TilingPolicy tiling_{768 * 768};
};

}  // namespace pictor::models
