// Latent Consistency Model sampling (Luo et al. 2023), as diffusers' LCMScheduler: each step maps the
// sample to the consistency function's x0 (boundary-condition scalings c_skip, c_out) and re-noises it
// to the next timestep with fresh noise (no noise after the last step).
#include <ATen/ATen.h>

#include <cmath>

#include "core/error.hpp"
#include "schedulers/kinds.hpp"

namespace pictor::sched {

namespace {

class LcmScheduler : public Scheduler {
 public:
  explicit LcmScheduler(const SchedulerConfig& c)
      : Scheduler("lcm", c, resolve_betas(c, ClassDefaults{0.00085, 0.012, "scaled_linear", "leading"}),
                  /*clamp_terminal=*/false),
        original_steps_(c.original_inference_steps.value_or(50)),
        timestep_scaling_(c.timestep_scaling.value_or(10.0)),
        clip_sample_(c.clip_sample.value_or(false)),
        clip_range_(c.clip_sample_range.value_or(1.0)) {
    if (c.raw.get<bool>("thresholding", false)) unsupported("thresholding", "true");
    final_alpha_cumprod_ = c.set_alpha_to_one.value_or(true) ? at::scalar_tensor(1.0, at::kFloat) : alphas_cumprod_[0];
  }

  bool uses_noise() const override { return true; }

  void set_timesteps(int n) override { compute_timesteps(n, 1.0); }

  int set_strength(double strength) override {
    if (!timesteps_.defined()) throw Error("lcm scheduler: set_timesteps() must come before set_strength()");
    if (!(strength >= 0 && strength <= 1))
      throw Error("img2img strength " + std::to_string(strength) + " must be between 0 and 1");
    compute_timesteps(num_inference_steps_, strength);
    return 0;
  }

  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, int i) const override {
    check_step(i);
    return ddpm_add_noise(alphas_cumprod_, original, noise, timesteps_[i].item<int64_t>());
  }

  StepOutput step(const at::Tensor& model_output, int i, const at::Tensor& sample, NoiseSource* noise) override {
    check_step(i);
    const int64_t t = timesteps_[i].item<int64_t>();
    const int64_t prev_t = i + 1 < num_timesteps() ? timesteps_[i + 1].item<int64_t>() : t;
    at::Tensor alpha_prod_t = alphas_cumprod_[t];
    at::Tensor alpha_prod_t_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : final_alpha_cumprod_;
    at::Tensor beta_prod_t = 1 - alpha_prod_t, beta_prod_t_prev = 1 - alpha_prod_t_prev;

    // Boundary-condition scalings with sigma_data = 0.5; Python's `0.25 / x` is reciprocal(x) * 0.25.
    at::Tensor scaled = at::scalar_tensor(t, at::kLong) * timestep_scaling_;
    at::Tensor c_skip = at::reciprocal(at::pow(scaled, 2) + 0.25) * 0.25;
    at::Tensor c_out = scaled / at::pow(at::pow(scaled, 2) + 0.25, 0.5);

    at::Tensor x0;
    switch (prediction_) {
      case Prediction::epsilon: x0 = (sample - beta_prod_t.sqrt() * model_output) / alpha_prod_t.sqrt(); break;
      case Prediction::sample: x0 = model_output; break;
      case Prediction::v_prediction: x0 = alpha_prod_t.sqrt() * sample - beta_prod_t.sqrt() * model_output; break;
    }
    if (clip_sample_) x0 = x0.clamp(-clip_range_, clip_range_);
    at::Tensor denoised = c_out * x0 + c_skip * sample;

    if (i == num_inference_steps_ - 1) return {denoised, denoised};
    if (!noise) throw Error("lcm scheduler: step() needs a noise source");
    at::Tensor z = noise->randn(model_output.sizes()).to(model_output.device(), denoised.scalar_type());
    at::Tensor prev = alpha_prod_t_prev.sqrt() * denoised + beta_prod_t_prev.sqrt() * z;
    return {prev, denoised};
  }

 private:
  // diffusers LCMScheduler.set_timesteps(n, strength=...): n timesteps evenly spaced (by index) over the
  // first strength fraction of the original_inference_steps-long distillation schedule.
  void compute_timesteps(int n, double strength) {
    check_steps_arg(n);
    const int N = num_train_timesteps_;
    if (original_steps_ > N)
      throw Error(source_ + ": original_inference_steps " + std::to_string(original_steps_) +
                  " cannot exceed num_train_timesteps " + std::to_string(N));
    if (n > original_steps_)
      throw Error("lcm scheduler: " + std::to_string(n) + " steps cannot exceed original_inference_steps " +
                  std::to_string(original_steps_));
    const int k = N / original_steps_;
    const int count = static_cast<int>(original_steps_ * strength);
    if (count / n < 1)
      throw Error("lcm scheduler: original_inference_steps x strength = " + std::to_string(original_steps_) + " x " +
                  std::to_string(strength) + " is smaller than the " + std::to_string(n) +
                  " steps asked for: use fewer steps or a higher strength");
    std::vector<int64_t> origin;  // descending: count*k-1, ..., k-1
    for (int j = count; j >= 1; --j) origin.push_back(static_cast<int64_t>(j) * k - 1);
    std::vector<int64_t> ts;
    for (double idx : np_linspace(0, count, n, /*endpoint=*/false))
      ts.push_back(origin[static_cast<size_t>(std::floor(idx))]);
    num_inference_steps_ = n;
    timesteps_ = at::tensor(ts, at::kLong);
  }

  int original_steps_;
  double timestep_scaling_;
  bool clip_sample_;
  double clip_range_;
  at::Tensor final_alpha_cumprod_;
};

}  // namespace

std::unique_ptr<Scheduler> make_lcm(const SchedulerConfig& c) {
  return std::make_unique<LcmScheduler>(c);
}

}  // namespace pictor::sched
