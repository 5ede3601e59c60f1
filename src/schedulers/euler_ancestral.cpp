// Euler ancestral (k-diffusion sample_euler_ancestral, eta = 1), as diffusers'
// EulerAncestralDiscreteScheduler: an Euler step down to sigma_down, then fresh noise of scale sigma_up.
#include <ATen/ATen.h>

#include "schedulers/euler_family.hpp"

#include "core/error.hpp"

namespace pictor::sched {

namespace {

class EulerAncestralScheduler : public EulerFamily {
 public:
  explicit EulerAncestralScheduler(const SchedulerConfig& c) : EulerFamily("euler_a", c, /*karras=*/false) {
    // diffusers' EulerAncestralDiscreteScheduler raises for sample prediction.
    if (prediction_ == Prediction::sample) unsupported("prediction_type", "'sample'");
  }

  bool uses_noise() const override { return true; }

  StepOutput step(const at::Tensor& model_output, int i, const at::Tensor& sample, NoiseSource* noise) override {
    check_step(i);
    if (!noise) throw Error("euler_a scheduler: step() needs a noise source");
    at::Tensor x = sample.to(at::kFloat);
    at::Tensor s = sigma(i);
    at::Tensor x0 = predict_original(model_output, x, i);

    at::Tensor sigma_from = sigma(i), sigma_to = sigma(i + 1);
    at::Tensor from2 = at::pow(sigma_from, 2), to2 = at::pow(sigma_to, 2);
    at::Tensor sigma_up = at::pow(to2 * (from2 - to2) / from2, 0.5);
    at::Tensor sigma_down = at::pow(to2 - at::pow(sigma_up, 2), 0.5);

    at::Tensor derivative = (x - x0) / s;
    at::Tensor dt = sigma_down - s;
    at::Tensor prev = x + derivative * dt;
    at::Tensor z = noise->randn(model_output.sizes()).to(model_output.device(), model_output.scalar_type());
    prev = prev + z * sigma_up;
    return {prev.to(model_output.scalar_type()), x0};
  }
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_ancestral(const SchedulerConfig& c) {
  return std::make_unique<EulerAncestralScheduler>(c);
}

}  // namespace pictor::sched
