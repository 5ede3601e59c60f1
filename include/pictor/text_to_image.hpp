#pragma once
// Pictor's public C++ API for text-to-image. No libtorch types appear here, so front ends (CLI,
// server) compile quickly and never depend on the tensor engine's headers.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/image.hpp"

namespace pictor {

struct GenerateOptions {
  std::string prompt;
  std::string negative_prompt;
  int width = 0, height = 0;     // 0: the model's native size
  int steps = 0;                 // 0: 1 for SD-Turbo models, else 25
  double guidance = -1;          // < 0: 0 (off) for SD-Turbo models, else 7.5
  std::string sampler;           // "": the sampler matching the model's scheduler config
  std::optional<uint64_t> seed;  // unset: a random seed (reported back)
  int count = 1;                 // images; image k uses seed + k
  std::string noise = "cpu";     // "cpu": torch CPU generator (diffusers/ComfyUI); "a1111": A1111 GPU noise
  int clip_skip = 1;
  std::optional<Image> init_image;  // img2img / inpainting source (resized to the output size if needed)
  double strength = 0.75;
  std::optional<Image> mask;
  MaskConvention mask_convention = MaskConvention::WhiteRepaints;
  bool previews = false;  // TAESD previews in progress reports (needs a TAESD decoder)
};

struct Progress {
  int image_index = 0, image_count = 1;
  int step = 0, total = 0;
  double elapsed_s = 0, eta_s = 0;
  const Image* preview = nullptr;
};
// Return false to cancel.
using ProgressCallback = std::function<bool(const Progress&)>;

struct GeneratedImage {
  Image image;
  uint64_t seed = 0;
  std::string parameters;  // AUTOMATIC1111 "parameters" text (also stored in the PNG)
};

struct LoadOptions {
  std::string taesd_dir;  // optional AutoencoderTiny folder (previews, fast decode)
  bool decode_with_taesd = false;
  int threads = 0;  // 0: all cores
  // Image-to-text models loaded with these options (the server's catalog): the language model's linear
  // layers as int8 with per-row scales, for faster decoding (ImageToText::load).
  bool int8_decoder = false;
};

class TextToImage {
 public:
  // Loads a diffusers-layout Stable Diffusion folder.
  static std::unique_ptr<TextToImage> load(const std::string& model_dir, const LoadOptions& opts = {});
  ~TextToImage();
  std::vector<GeneratedImage> generate(const GenerateOptions& opts, const ProgressCallback& progress = {});
  // The options actually used after defaults are applied (sampler, steps, size ...).
  GenerateOptions resolve(const GenerateOptions& opts) const;
  const std::string& model_name() const;
  std::vector<std::string> samplers() const;

 private:
  struct Impl;
  explicit TextToImage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The default model, pulled from the Hugging Face hub on first use.
inline constexpr const char* kDefaultModelRepo = "stabilityai/sd-turbo";

// Turns `--model` (a folder, or a hub repo id such as "stabilityai/sd-turbo", or empty for the default)
// into a local folder, pulling it if it is not there yet and `allow_pull`. Throws pictor::Error with
// instructions when the model is missing and cannot be fetched.
std::string resolve_model_dir(const std::string& model, bool allow_pull = true);

}  // namespace pictor
