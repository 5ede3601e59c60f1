#pragma once
// A Stable Diffusion checkpoint in the diffusers folder layout (model_index.json, tokenizer/,
// text_encoder/, unet/, vae/, scheduler/), loaded into Pictor's model classes. Which classes each folder
// holds comes from model_index.json; architecture details come from each component's config.json.
#include <c10/core/Device.h>

#include <filesystem>
#include <memory>
#include <string>

#include "models/autoencoder_kl.hpp"
#include "models/autoencoder_tiny.hpp"
#include "models/clip_text.hpp"
#include "models/unet2d.hpp"
#include "schedulers/scheduler.hpp"
#include "tokenizers/clip_tokenizer.hpp"

namespace pictor::pipelines {

struct SdLoadOptions {
  c10::Device device = c10::kCPU;
  // Optional AutoencoderTiny (TAESD) folder used for fast decoding and previews.
  std::filesystem::path taesd_dir;
  // Decode with TAESD instead of the full VAE (requires taesd_dir).
  bool decode_with_taesd = false;
};

struct StableDiffusionModel {
  std::filesystem::path dir;
  std::string name;  // folder name, used in image metadata
  tokenizers::ClipTokenizer tokenizer;
  std::unique_ptr<models::ClipTextModel> text_encoder;
  std::unique_ptr<models::UNet2DConditionModel> unet;
  std::unique_ptr<models::AutoencoderKL> vae;
  std::unique_ptr<models::AutoencoderTiny> taesd;  // may be null
  bool decode_with_taesd = false;
  SchedulerConfig scheduler_config;
  std::string scheduler_class;  // diffusers class in scheduler_config.json
  c10::Device device = c10::kCPU;

  // Loads and validates every component; errors name the folder/file at fault.
  static std::unique_ptr<StableDiffusionModel> load(const std::filesystem::path& dir, const SdLoadOptions& opts = {});

  // Pixels per latent cell (8 for every SD VAE): 2^(number of VAE blocks - 1).
  int vae_scale_factor() const;
  // Native resolution in pixels (unet sample_size × vae_scale_factor).
  int default_size() const;
  // SD-Turbo-style distilled models (no guidance, 1-4 steps) are recognised by name.
  bool is_turbo() const;
  // Whether the UNet takes the 9-channel inpainting input.
  bool is_inpainting_unet() const;
};

}  // namespace pictor::pipelines
