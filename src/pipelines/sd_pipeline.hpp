#pragma once
// The Stable Diffusion denoising loop: txt2img, img2img and inpainting in one function, because the three
// differ only in how the starting latents are made and whether a mask is blended in at each step.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipelines/sd_model.hpp"

namespace pictor::pipelines {

// Where the seeded Gaussian noise comes from.
enum class NoiseKind {
  TorchCpu,  // torch.randn with a CPU generator: what diffusers and ComfyUI draw (default)
  A1111Gpu,  // AUTOMATIC1111's default "GPU" noise (Philox, as torch draws on CUDA)
};

struct SdRequest {
  std::string prompt;
  std::string negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  double guidance = 7.5;  // <= 1 disables classifier-free guidance (one UNet pass per step)
  std::string sampler = "euler";
  uint64_t seed = 0;
  NoiseKind noise = NoiseKind::TorchCpu;
  int clip_skip = 1;
  // img2img / inpainting: [1,3,H,W] in [-1,1] at the output size, and how much of it to repaint.
  at::Tensor init_image;
  double strength = 0.75;
  // Inpainting: [1,1,H,W] in [0,1], 1 = repaint. Needs init_image.
  at::Tensor mask;
  // Conformance/testing hook: unit-variance starting noise [1,C,h,w] used instead of the seeded draw.
  at::Tensor initial_latents;
  // Decode a TAESD preview of the current estimate for each step callback (needs a TAESD decoder).
  bool previews = false;
};

struct StepInfo {
  int step = 0;   // 1-based
  int total = 0;  // steps that will actually run (img2img runs fewer)
  double elapsed_s = 0, eta_s = 0;
  at::Tensor preview;  // [3,h,w] in [0,1] when requested and available
};
// Called after every step; returning false cancels the run (pictor::Cancelled is thrown).
using StepCallback = std::function<bool(const StepInfo&)>;

// Intermediate tensors, recorded when a trace is passed (golden conformance and debugging).
struct SdTrace {
  at::Tensor prompt_embeds, negative_prompt_embeds, timesteps, decoded;
  std::vector<at::Tensor> unet_input, unet_output, latents;
};

struct SdResult {
  at::Tensor image;  // [3,H,W] float in [0,1]
  std::vector<double> timesteps;
};

// Validates the request (sizes multiple of the VAE factor, step counts, strength, mask shape ...) and
// throws pictor::Error naming the problem.
void validate_request(const StableDiffusionModel& m, const SdRequest& r);

SdResult run_stable_diffusion(const StableDiffusionModel& m, const SdRequest& r, const StepCallback& on_step = {},
                              SdTrace* trace = nullptr);

}  // namespace pictor::pipelines
