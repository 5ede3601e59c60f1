// DDIM (Song et al. 2020) with eta = 0, as diffusers' DDIMScheduler: deterministic steps along the
// predicted x0 / epsilon between training timesteps spaced num_train_timesteps / n apart.
#include <ATen/ATen.h>

#include "core/error.hpp"
#include "schedulers/kinds.hpp"

namespace pictor::sched {

namespace {

class DdimScheduler : public Scheduler {
 public:
  explicit DdimScheduler(const SchedulerConfig& c)
      : Scheduler("ddim", c, resolve_betas(c, ClassDefaults{0.0001, 0.02, "linear", "leading"}),
                  /*clamp_terminal=*/false),
        spacing_(parse_spacing(c.timestep_spacing.value_or("leading"), c.source)),
        steps_offset_(c.steps_offset.value_or(0)),
        clip_sample_(c.clip_sample.value_or(true)),
        clip_range_(c.clip_sample_range.value_or(1.0)) {
    if (c.raw.get<bool>("thresholding", false)) unsupported("thresholding", "true");
    final_alpha_cumprod_ = c.set_alpha_to_one.value_or(true) ? at::scalar_tensor(1.0, at::kFloat) : alphas_cumprod_[0];
  }

  void set_timesteps(int n) override {
    check_steps_arg(n);
    num_inference_steps_ = n;
    const int N = num_train_timesteps_;
    std::vector<int64_t> ts;
    if (spacing_ == Spacing::linspace) {
      std::vector<double> l = np_linspace(0, N - 1, n);
      for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<int64_t>(np_round(l[i])));
    } else if (spacing_ == Spacing::leading) {
      const int ratio = N / n;
      for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<int64_t>(i) * ratio + steps_offset_);
    } else {
      for (double t : np_arange(N, 0, -static_cast<double>(N) / n)) ts.push_back(static_cast<int64_t>(np_round(t)) - 1);
    }
    timesteps_ = at::tensor(ts, at::kLong);
  }

  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, int i) const override {
    check_step(i);
    return ddpm_add_noise(alphas_cumprod_, original, noise, timesteps_[i].item<int64_t>());
  }

  StepOutput step(const at::Tensor& model_output, int i, const at::Tensor& sample, NoiseSource*) override {
    check_step(i);
    const int64_t t = timesteps_[i].item<int64_t>();
    const int64_t prev_t = t - num_train_timesteps_ / num_inference_steps_;
    at::Tensor alpha_prod_t = alphas_cumprod_[t];
    at::Tensor alpha_prod_t_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : final_alpha_cumprod_;
    at::Tensor beta_prod_t = 1 - alpha_prod_t;

    at::Tensor x0, eps;
    switch (prediction_) {
      case Prediction::epsilon:
        x0 = (sample - at::pow(beta_prod_t, 0.5) * model_output) / at::pow(alpha_prod_t, 0.5);
        eps = model_output;
        break;
      case Prediction::sample:
        x0 = model_output;
        eps = (sample - at::pow(alpha_prod_t, 0.5) * x0) / at::pow(beta_prod_t, 0.5);
        break;
      case Prediction::v_prediction:
        x0 = at::pow(alpha_prod_t, 0.5) * sample - at::pow(beta_prod_t, 0.5) * model_output;
        eps = at::pow(alpha_prod_t, 0.5) * model_output + at::pow(beta_prod_t, 0.5) * sample;
        break;
    }
    if (clip_sample_) x0 = x0.clamp(-clip_range_, clip_range_);
    // eta = 0: no variance term, so std_dev_t = 0 and the direction is sqrt(1 - a_prev) * eps.
    at::Tensor direction = at::pow(1 - alpha_prod_t_prev, 0.5) * eps;
    at::Tensor prev = at::pow(alpha_prod_t_prev, 0.5) * x0 + direction;
    return {prev, x0};
  }

 private:
  Spacing spacing_;
  int steps_offset_;
  bool clip_sample_;
  double clip_range_;
  at::Tensor final_alpha_cumprod_;
};

}  // namespace

std::unique_ptr<Scheduler> make_ddim(const SchedulerConfig& c) {
  return std::make_unique<DdimScheduler>(c);
}

}  // namespace pictor::sched
