#pragma once
// Internal: what the k-diffusion style samplers (Euler, Euler ancestral) share in diffusers: float
// timesteps from the configured spacing, sigmas interpolated from the training schedule (optionally
// Karras), input scaling by 1/sqrt(sigma^2 + 1) and img2img noising x + sigma * noise.
#include "schedulers/kinds.hpp"

namespace pictor::sched {

class EulerFamily : public Scheduler {
 public:
  void set_timesteps(int num_inference_steps) override;
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& sample, int step_index) const override;
  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, int step_index) const override;

 protected:
  EulerFamily(std::string name, const SchedulerConfig& c, bool karras);
  // x0 from the model output at step i (epsilon / v_prediction / sample parameterisation).
  at::Tensor predict_original(const at::Tensor& model_output, const at::Tensor& sample, int i) const;

  Spacing spacing_ = Spacing::linspace;
  int steps_offset_ = 0;
  bool karras_ = false;
  std::optional<double> sigma_min_, sigma_max_;
};

}  // namespace pictor::sched
