#pragma once
// `pictor dev make-tiny-sd DIR`: writes a complete, loadable diffusers-layout Stable Diffusion folder with
// small random-weight models and a generated CLIP BPE vocabulary, so the whole generation path (loading,
// tokenizing, denoising, decoding, CLI) is exercised in tests without downloading anything.
#include <cstdint>
#include <filesystem>

namespace pictor::dev {

struct TinySdOptions {
  uint64_t seed = 1234;
  bool inpainting = false;          // 9-channel UNet (as in stable-diffusion-inpainting)
  bool v_prediction = false;        // SD 2.x 768-style scheduler config
  std::filesystem::path taesd_dir;  // also write a tiny AutoencoderTiny folder here when set
};

void make_tiny_sd(const std::filesystem::path& dir, const TinySdOptions& opts = {});

// Writes only a small CLIP BPE tokenizer folder (vocab.json, merges.txt, configs); returns its vocab size.
int64_t write_tiny_clip_tokenizer(const std::filesystem::path& dir);

}  // namespace pictor::dev
