#include "schedulers/euler_family.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.hpp"

namespace pictor::sched {

EulerFamily::EulerFamily(std::string name, const SchedulerConfig& c, bool karras)
    : Scheduler(std::move(name), c, resolve_betas(c, ClassDefaults{}), /*clamp_terminal=*/true),
      spacing_(parse_spacing(c.timestep_spacing.value_or("linspace"), c.source)),
      steps_offset_(c.steps_offset.value_or(0)),
      karras_(karras),
      sigma_min_(c.sigma_min),
      sigma_max_(c.sigma_max) {}

void EulerFamily::set_timesteps(int n) {
  check_steps_arg(n);
  num_inference_steps_ = n;
  const int N = num_train_timesteps_;
  // Timesteps as float32, descending (diffusers EulerDiscreteScheduler.set_timesteps).
  std::vector<float> ts;
  if (spacing_ == Spacing::linspace) {
    for (double t : np_linspace(0, N - 1, n)) ts.push_back(static_cast<float>(t));
    std::reverse(ts.begin(), ts.end());
  } else if (spacing_ == Spacing::leading) {
    const int ratio = N / n;
    for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<float>(i * ratio) + static_cast<float>(steps_offset_));
  } else {
    for (double t : np_arange(N, 0, -static_cast<double>(N) / n)) ts.push_back(static_cast<float>(np_round(t)) - 1.0f);
  }

  const std::vector<float> table = sigma_table(alphas_cumprod_);
  std::vector<double> sig(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) sig[i] = np_interp_index(ts[i], table);
  if (karras_) {
    const double lo = sigma_min_.value_or(sig.back()), hi = sigma_max_.value_or(sig.front());
    sig = karras_sigmas(lo, hi, n);
    const std::vector<float> log_sigmas = log_of(table);
    ts.resize(sig.size());
    for (size_t i = 0; i < sig.size(); ++i) ts[i] = static_cast<float>(sigma_to_t(sig[i], log_sigmas));
  }
  std::vector<float> sig32(sig.begin(), sig.end());
  sig32.push_back(0.0f);
  timesteps_ = at::tensor(ts, at::kFloat);
  sigmas_ = at::tensor(sig32, at::kFloat);
}

double EulerFamily::init_noise_sigma() const {
  if (!sigmas_.defined()) throw Error(name_ + " scheduler: set_timesteps() was not called");
  at::Tensor m = sigmas_.max();
  if (spacing_ == Spacing::linspace || spacing_ == Spacing::trailing) return m.item<double>();
  return at::pow(at::pow(m, 2) + 1, 0.5).item<double>();
}

at::Tensor EulerFamily::scale_model_input(const at::Tensor& sample, int i) const {
  check_step(i);
  return sample / at::pow(at::pow(sigma(i), 2) + 1, 0.5);
}

at::Tensor EulerFamily::add_noise(const at::Tensor& original, const at::Tensor& noise, int i) const {
  check_step(i);
  return original + noise.to(original.device(), original.scalar_type()) * sigma(i).to(original.scalar_type());
}

at::Tensor EulerFamily::predict_original(const at::Tensor& model_output, const at::Tensor& sample, int i) const {
  at::Tensor s = sigma(i);
  switch (prediction_) {
    case Prediction::epsilon: return sample - s * model_output;
    case Prediction::v_prediction:
      // denoised = model_output * c_out + input * c_skip
      return model_output * (-s / at::pow(at::pow(s, 2) + 1, 0.5)) + (sample / (at::pow(s, 2) + 1));
    case Prediction::sample: return model_output;
  }
  return {};
}

}  // namespace pictor::sched
