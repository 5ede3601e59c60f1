#pragma once
// Diffusion samplers ("schedulers" in diffusers' terms), matching diffusers 0.27.2 bit for bit in float32.
//
// Use (txt2img):
//   auto s = make_scheduler("euler", SchedulerConfig::load(dir / "scheduler/scheduler_config.json"));
//   s->set_timesteps(steps);
//   x = noise.randn(shape) * s->init_noise_sigma();
//   for (int i = 0; i < s->num_timesteps(); ++i) {
//     eps = unet(s->scale_model_input(x, i), s->timesteps()[i], ...);
//     x = s->step(eps, i, x, &noise).prev_sample;
//   }
// img2img: after set_timesteps, `int start = s->set_strength(strength)`, x = s->add_noise(init, noise, start),
// and the loop runs i = start .. num_timesteps()-1. Steps must be taken in order (DPM-Solver keeps history).
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "schedulers/noise.hpp"
#include "schedulers/scheduler_config.hpp"
#include "schedulers/sigmas.hpp"

namespace pictor {

enum class Prediction { epsilon, v_prediction, sample };

class Scheduler {
 public:
  struct StepOutput {
    at::Tensor prev_sample;           // x for the next step (same dtype as model_output)
    at::Tensor pred_original_sample;  // the model's x0 estimate (LCM: its `denoised`)
  };

  virtual ~Scheduler() = default;
  const std::string& name() const { return name_; }

  // Computes the timesteps (and sigmas) for `num_inference_steps` >= 1; resets the sampler state.
  virtual void set_timesteps(int num_inference_steps) = 0;
  // img2img: keeps the last int(n * strength) steps, as diffusers' img2img get_timesteps() (LCM instead
  // recomputes its schedule over the first strength fraction of the training steps and keeps all n).
  // Returns the index of the first step to run; strength must be in [0, 1] and leave at least one step.
  virtual int set_strength(double strength);

  int num_inference_steps() const { return num_inference_steps_; }
  int num_timesteps() const;  // length of timesteps()
  // Timesteps to give the UNet, as diffusers: float32 for the Euler family (fractional for Karras and
  // linspace spacing), int64 for DPM-Solver, DDIM and LCM.
  const at::Tensor& timesteps() const { return timesteps_; }
  double timestep(int step_index) const;  // the same value as a double (exact)
  // float32 [num_timesteps + 1] noise levels, ending in the final sigma; undefined for DDIM/LCM.
  const at::Tensor& sigmas() const { return sigmas_; }
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }  // float32 [num_train_timesteps]
  Prediction prediction() const { return prediction_; }

  // Scale of the initial noise: multiply unit Gaussian latents by this (txt2img).
  virtual double init_noise_sigma() const { return 1.0; }
  // The UNet input for step `step_index` (k-diffusion samplers divide by sqrt(sigma^2 + 1)).
  virtual at::Tensor scale_model_input(const at::Tensor& sample, int step_index) const;
  // One denoising step. `noise` is used by the ancestral/stochastic samplers only (may be null otherwise);
  // they draw model_output-shaped tensors from it, as diffusers draws from the pipeline's generator.
  virtual StepOutput step(const at::Tensor& model_output, int step_index, const at::Tensor& sample,
                          NoiseSource* noise) = 0;
  // `original` noised to the level of step `step_index` (img2img start latents).
  virtual at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, int step_index) const = 0;
  // Whether step() draws from its NoiseSource.
  virtual bool uses_noise() const { return false; }

 protected:
  Scheduler(std::string name, const SchedulerConfig& cfg, const sched::BetaSchedule& betas, bool clamp_terminal);
  void check_step(int step_index) const;  // throws Error when out of range / before set_timesteps
  void check_steps_arg(int num_inference_steps) const;
  at::Tensor sigma(int i) const { return sigmas_[i]; }  // 0-dim float32, as diffusers' self.sigmas[i]
  [[noreturn]] void unsupported(const std::string& field, const std::string& value) const;

  std::string name_, source_;
  int num_train_timesteps_ = 1000;
  Prediction prediction_ = Prediction::epsilon;
  at::Tensor alphas_cumprod_, timesteps_, sigmas_;
  int num_inference_steps_ = 0;
};

// Scheduler names: euler, euler_karras, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, lcm.
// "euler" and "dpmpp_2m" follow the config's use_karras_sigmas; the *_karras names force Karras sigmas.
// The config gives the noise schedule (betas, prediction type, spacing ...), whatever class wrote it.
std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const SchedulerConfig& config);
std::vector<std::string> scheduler_names();
// The scheduler name for a diffusers `_class_name` (unknown/unimplemented classes such as PNDMScheduler
// map to "euler").
std::string default_scheduler_for(const std::string& diffusers_class_name);

}  // namespace pictor
