#include "pipelines/sd_pipeline.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <memory>

#include "core/error.hpp"
#include "core/runtime.hpp"
#include "pipelines/prompt_conditioning.hpp"
#include "schedulers/noise.hpp"
#include "schedulers/scheduler.hpp"

namespace pictor::pipelines {

namespace {

constexpr int kMaxSide = 4096;

std::unique_ptr<NoiseSource> make_noise(NoiseKind kind, uint64_t seed) {
  if (kind == NoiseKind::A1111Gpu) return std::make_unique<A1111GpuNoise>(seed);
  return std::make_unique<TorchCpuNoise>(seed);
}

// Latents from the VAE posterior, drawn like diffusers' retrieve_latents(..., generator): mean + std * noise.
at::Tensor encode_to_latents(const StableDiffusionModel& m, const at::Tensor& image, NoiseSource& noise) {
  auto post = m.vae->encode(image);
  at::Tensor eps = noise.randn(post.mean.sizes()).to(post.mean.device());
  return (post.mean + post.std * eps) * m.vae->config().scaling_factor;
}

// Latents -> decoder output in about [-1, 1] (the full VAE, or TAESD when asked).
at::Tensor decode_raw(const StableDiffusionModel& m, const at::Tensor& latents, bool with_taesd) {
  return with_taesd ? m.taesd->decode(latents / m.taesd->config().scaling_factor)
                    : m.vae->decode(latents / m.vae->config().scaling_factor);
}
at::Tensor to_unit_range(const at::Tensor& x) {
  return (x / 2 + 0.5).clamp(0, 1);
}

}  // namespace

void validate_request(const StableDiffusionModel& m, const SdRequest& r) {
  const int f = m.vae_scale_factor();
  for (auto [name, v] : {std::pair{"width", r.width}, std::pair{"height", r.height}}) {
    if (v <= 0 || v % f != 0)
      throw Error(std::string(name) + " " + std::to_string(v) + " must be a positive multiple of " + std::to_string(f));
    if (v > kMaxSide)
      throw Error(std::string(name) + " " + std::to_string(v) + " exceeds the limit of " + std::to_string(kMaxSide));
  }
  if (r.steps < 1 || r.steps > 1000) throw Error("steps " + std::to_string(r.steps) + " must be between 1 and 1000");
  if (r.guidance < 0 || r.guidance > 100) throw Error("guidance must be between 0 and 100");
  if (r.clip_skip < 1) throw Error("clip skip must be >= 1");
  if (r.init_image.defined()) {
    if (r.init_image.dim() != 4 || r.init_image.size(1) != 3 || r.init_image.size(2) != r.height ||
        r.init_image.size(3) != r.width)
      throw Error("init image must be [1,3," + std::to_string(r.height) + "," + std::to_string(r.width) + "]");
    if (!(r.strength > 0.0 && r.strength <= 1.0)) throw Error("strength must be in (0, 1]");
  }
  if (r.mask.defined()) {
    if (!r.init_image.defined()) throw Error("a mask needs an init image to inpaint");
    if (r.mask.dim() != 4 || r.mask.size(1) != 1 || r.mask.size(2) != r.height || r.mask.size(3) != r.width)
      throw Error("mask must have the same size as the image (" + std::to_string(r.width) + "x" +
                  std::to_string(r.height) + ")");
  }
  if (m.is_inpainting_unet() && !r.mask.defined())
    throw Error(m.dir.string() + " is an inpainting model (9-channel UNet): it needs --init and --mask");
  if (r.previews && !m.taesd) throw Error("previews need a TAESD decoder (--vae DIR)");
}

SdResult run_stable_diffusion(const StableDiffusionModel& m, const SdRequest& r, const StepCallback& on_step,
                              SdTrace* trace) {
  validate_request(m, r);
  const auto t0 = std::chrono::steady_clock::now();
  const at::Device dev = m.device;
  const bool cfg = r.guidance > 1.0;
  const int f = m.vae_scale_factor();
  const int64_t C = m.vae->config().latent_channels;
  const std::vector<int64_t> lat_shape{1, C, r.height / f, r.width / f};

  ConditioningOptions copt;
  copt.clip_skip = r.clip_skip;
  at::Tensor emb;
  if (cfg) {
    PromptPair pp = encode_prompt_pair(m, r.prompt, r.negative_prompt, copt);
    emb = at::cat({pp.uncond, pp.cond}, 0);
    if (trace) trace->prompt_embeds = pp.cond, trace->negative_prompt_embeds = pp.uncond;
  } else {
    emb = encode_prompt(m, r.prompt, copt);
    if (trace) trace->prompt_embeds = emb;
  }

  auto sched = make_scheduler(r.sampler, m.scheduler_config);
  sched->set_timesteps(r.steps);
  auto noise = make_noise(r.noise, r.seed);

  // Starting latents. img2img/inpaint: encode the image (this draws from the generator first, as
  // diffusers does), skip the first (1 - strength) of the schedule and noise the latents to that level.
  int start = 0;
  at::Tensor image_latents, latents, first_noise;
  const bool from_image = r.init_image.defined();
  if (from_image) {
    image_latents = encode_to_latents(m, r.init_image.to(dev), *noise);
    start = sched->set_strength(r.strength);
  }
  first_noise = r.initial_latents.defined() ? r.initial_latents.to(dev) : noise->randn(lat_shape).to(dev);
  if (from_image && !(m.is_inpainting_unet() && r.strength >= 1.0))
    latents = sched->add_noise(image_latents, first_noise, start);
  else
    latents = first_noise * sched->init_noise_sigma();

  // Inpainting inputs: the latent-resolution mask, and for 9-channel UNets the masked image's latents.
  at::Tensor mask_lat, masked_image_latents;
  if (r.mask.defined()) {
    mask_lat = at::upsample_nearest2d(r.mask.to(dev), {lat_shape[2], lat_shape[3]});
    if (m.is_inpainting_unet()) {
      at::Tensor masked = r.init_image.to(dev) * (r.mask.to(dev) < 0.5);
      masked_image_latents = encode_to_latents(m, masked, *noise);
    }
  }

  at::Tensor ts = sched->timesteps();
  const int n = static_cast<int>(ts.size(0));
  SdResult result;
  for (int i = start; i < n; ++i) {
    at::Tensor t = ts[i];
    at::Tensor x = cfg ? at::cat({latents, latents}, 0) : latents;
    x = sched->scale_model_input(x, i);
    at::Tensor unet_in = x;
    if (masked_image_latents.defined()) {
      const int64_t b = x.size(0);
      unet_in = at::cat({x, mask_lat.expand({b, -1, -1, -1}), masked_image_latents.expand({b, -1, -1, -1})}, 1);
    }
    at::Tensor eps = m.unet->forward(unet_in, t, emb);
    if (trace) trace->unet_input.push_back(x), trace->unet_output.push_back(eps);
    if (cfg) {
      auto parts = eps.chunk(2, 0);
      eps = parts[0] + r.guidance * (parts[1] - parts[0]);
    }
    auto out = sched->step(eps, i, latents, noise.get());
    latents = out.prev_sample;
    // Mask blending for ordinary checkpoints: outside the mask, replace the latents by the original
    // image noised to the level of the next step, so only the masked area is repainted.
    if (mask_lat.defined() && !masked_image_latents.defined()) {
      at::Tensor keep = i + 1 < n ? sched->add_noise(image_latents, first_noise, i + 1) : image_latents;
      latents = keep * (1 - mask_lat) + latents * mask_lat;
    }
    if (trace) trace->latents.push_back(latents);
    result.timesteps.push_back(t.item<double>());
    if (on_step) {
      StepInfo info;
      info.step = i - start + 1;
      info.total = n - start;
      info.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      info.eta_s = info.elapsed_s / info.step * (info.total - info.step);
      if (r.previews && m.taesd) info.preview = to_unit_range(decode_raw(m, out.pred_original_sample, true))[0];
      if (!on_step(info)) throw Cancelled();
    }
  }

  // The denoising loop's activations are dead now; hand their heap space back before the decoder sets
  // the memory peak.
  release_free_heap();
  at::Tensor decoded = decode_raw(m, latents, m.decode_with_taesd);
  at::Tensor image = to_unit_range(decoded);
  if (r.mask.defined()) {
    // Keep the untouched pixels exactly: paste the generated content only inside the mask.
    at::Tensor init01 = to_unit_range(r.init_image.to(dev));
    image = init01 * (1 - r.mask.to(dev)) + image * r.mask.to(dev);
  }
  if (trace) {
    trace->decoded = decoded;
    trace->timesteps = ts.narrow(0, start, n - start);
  }
  result.image = image[0].to(at::kCPU);
  return result;
}

}  // namespace pictor::pipelines
