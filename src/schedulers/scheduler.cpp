#include "schedulers/scheduler.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "schedulers/kinds.hpp"

namespace pictor {

namespace sched {

BetaSchedule resolve_betas(const SchedulerConfig& c, const ClassDefaults& d) {
  BetaSchedule b;
  b.num_train_timesteps = c.num_train_timesteps.value_or(1000);
  b.beta_start = c.beta_start.value_or(d.beta_start);
  b.beta_end = c.beta_end.value_or(d.beta_end);
  b.beta_schedule = c.beta_schedule.value_or(d.beta_schedule);
  b.trained_betas = c.trained_betas;
  b.rescale_betas_zero_snr = c.rescale_betas_zero_snr.value_or(false);
  return b;
}

bool raw_bool(const SchedulerConfig& c, const std::string& key, bool fallback) {
  return c.raw.get<bool>(key, fallback);
}

at::Tensor ddpm_add_noise(const at::Tensor& alphas_cumprod, const at::Tensor& original, const at::Tensor& noise,
                          int64_t t) {
  at::Tensor a = alphas_cumprod[t].to(original.scalar_type());
  return at::pow(a, 0.5) * original + at::pow(1 - a, 0.5) * noise.to(original.device(), original.scalar_type());
}

}  // namespace sched

Scheduler::Scheduler(std::string name, const SchedulerConfig& cfg, const sched::BetaSchedule& betas,
                     bool clamp_terminal)
    : name_(std::move(name)), source_(cfg.source), num_train_timesteps_(betas.num_train_timesteps) {
  const std::string p = cfg.prediction_type.value_or("epsilon");
  prediction_ = p == "v_prediction" ? Prediction::v_prediction
                : p == "sample"     ? Prediction::sample
                                    : Prediction::epsilon;
  alphas_cumprod_ = sched::make_alphas_cumprod(betas, clamp_terminal);
}

void Scheduler::unsupported(const std::string& field, const std::string& value) const {
  throw Unsupported(source_ + ": field '" + field + "' = " + value + " is not implemented by the " + name_ +
                    " scheduler");
}

void Scheduler::check_steps_arg(int n) const {
  if (n < 1 || n > num_train_timesteps_)
    throw Error(name_ + " scheduler: number of steps " + std::to_string(n) + " must be between 1 and " +
                std::to_string(num_train_timesteps_) + " (num_train_timesteps)");
}

int Scheduler::num_timesteps() const {
  return timesteps_.defined() ? static_cast<int>(timesteps_.size(0)) : 0;
}

void Scheduler::check_step(int step_index) const {
  if (!timesteps_.defined()) throw Error(name_ + " scheduler: set_timesteps() was not called");
  if (step_index < 0 || step_index >= num_timesteps())
    throw Error(name_ + " scheduler: step index " + std::to_string(step_index) + " out of range 0.." +
                std::to_string(num_timesteps() - 1));
}

double Scheduler::timestep(int step_index) const {
  check_step(step_index);
  return timesteps_[step_index].item<double>();
}

at::Tensor Scheduler::scale_model_input(const at::Tensor& sample, int step_index) const {
  check_step(step_index);
  return sample;
}

int Scheduler::set_strength(double strength) {
  if (!timesteps_.defined()) throw Error(name_ + " scheduler: set_timesteps() must come before set_strength()");
  if (!(strength >= 0 && strength <= 1))
    throw Error("img2img strength " + std::to_string(strength) + " must be between 0 and 1");
  const int n = num_inference_steps_;
  // diffusers StableDiffusionImg2ImgPipeline.get_timesteps (scheduler order 1).
  const int init_timestep = std::min(static_cast<int>(n * strength), n);
  const int t_start = std::max(n - init_timestep, 0);
  if (t_start >= num_timesteps())
    throw Error("img2img strength " + std::to_string(strength) + " with " + std::to_string(n) +
                " steps leaves no denoising step (int(steps * strength) must be at least 1)");
  return t_start;
}

std::vector<std::string> scheduler_names() {
  return {"euler", "euler_karras", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "lcm"};
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const SchedulerConfig& config) {
  if (name == "euler") return sched::make_euler(config, false);
  if (name == "euler_karras") return sched::make_euler(config, true);
  if (name == "euler_a") return sched::make_euler_ancestral(config);
  if (name == "dpmpp_2m") return sched::make_dpmpp_2m(config, false);
  if (name == "dpmpp_2m_karras") return sched::make_dpmpp_2m(config, true);
  if (name == "ddim") return sched::make_ddim(config);
  if (name == "lcm") return sched::make_lcm(config);
  std::string known;
  for (const auto& n : scheduler_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown scheduler '" + name + "' (known: " + known + ")");
}

std::string default_scheduler_for(const std::string& cls) {
  static const std::map<std::string, std::string> table = {
      {"EulerDiscreteScheduler", "euler"},
      {"EulerAncestralDiscreteScheduler", "euler_a"},
      {"DPMSolverMultistepScheduler", "dpmpp_2m"},
      {"DDIMScheduler", "ddim"},
      {"LCMScheduler", "lcm"},
      // Not implemented; their models run well with Euler on the same noise schedule.
      {"PNDMScheduler", "euler"},
      {"LMSDiscreteScheduler", "euler"},
      {"DDPMScheduler", "euler"},
      {"HeunDiscreteScheduler", "euler"},
      {"KDPM2DiscreteScheduler", "euler"},
      {"UniPCMultistepScheduler", "dpmpp_2m"},
      {"DPMSolverSinglestepScheduler", "dpmpp_2m"},
      {"DEISMultistepScheduler", "dpmpp_2m"},
  };
  auto it = table.find(cls);
  return it == table.end() ? "euler" : it->second;
}

}  // namespace pictor
