// Euler (Karras et al. 2022, Algorithm 2 without churn), as diffusers' EulerDiscreteScheduler.
#include <ATen/ATen.h>

#include "schedulers/euler_family.hpp"

namespace pictor::sched {

namespace {

class EulerScheduler : public EulerFamily {
 public:
  EulerScheduler(const SchedulerConfig& c, bool karras) : EulerFamily(karras ? "euler_karras" : "euler", c, karras) {
    // Settings of EulerDiscreteScheduler that Pictor does not implement are refused, not ignored.
    const std::string interp = c.raw.get<std::string>("interpolation_type", "linear");
    if (interp != "linear") unsupported("interpolation_type", "'" + interp + "'");
    const std::string type = c.raw.get<std::string>("timestep_type", "discrete");
    if (type != "discrete") unsupported("timestep_type", "'" + type + "'");
  }

  StepOutput step(const at::Tensor& model_output, int i, const at::Tensor& sample, NoiseSource*) override {
    check_step(i);
    // diffusers draws (and, with s_churn = 0, discards) a noise tensor here; nothing depends on it, so
    // no draw is made.
    at::Tensor x = sample.to(at::kFloat);
    at::Tensor sigma_hat = sigma(i);  // sigma * (gamma + 1) with gamma = 0
    at::Tensor x0 = predict_original(model_output, x, i);
    at::Tensor derivative = (x - x0) / sigma_hat;
    at::Tensor dt = sigma(i + 1) - sigma_hat;
    at::Tensor prev = x + derivative * dt;
    return {prev.to(model_output.scalar_type()), x0};
  }
};

}  // namespace

std::unique_ptr<Scheduler> make_euler(const SchedulerConfig& c, bool force_karras) {
  return std::make_unique<EulerScheduler>(c, force_karras || c.use_karras_sigmas.value_or(false));
}

}  // namespace pictor::sched
