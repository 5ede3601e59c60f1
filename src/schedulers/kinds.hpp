#pragma once
// Internal: constructors of the scheduler implementations (one file each) and the per-class defaults
// that diffusers applies to keys a scheduler_config.json leaves out.
#include <memory>
#include <string>

#include "schedulers/scheduler.hpp"

namespace pictor::sched {

struct ClassDefaults {
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";
  std::string timestep_spacing = "linspace";
};

BetaSchedule resolve_betas(const SchedulerConfig& c, const ClassDefaults& d);
// The class-specific boolean/number keys a scheduler reads from `raw`: absent -> fallback.
bool raw_bool(const SchedulerConfig& c, const std::string& key, bool fallback);

// DDPM forward process at training timestep t: sqrt(a_t) x + sqrt(1 - a_t) noise (DDIM/LCM add_noise).
at::Tensor ddpm_add_noise(const at::Tensor& alphas_cumprod, const at::Tensor& original, const at::Tensor& noise,
                          int64_t t);

std::unique_ptr<Scheduler> make_euler(const SchedulerConfig& c, bool force_karras);
std::unique_ptr<Scheduler> make_euler_ancestral(const SchedulerConfig& c);
std::unique_ptr<Scheduler> make_dpmpp_2m(const SchedulerConfig& c, bool force_karras);
std::unique_ptr<Scheduler> make_ddim(const SchedulerConfig& c);
std::unique_ptr<Scheduler> make_lcm(const SchedulerConfig& c);

}  // namespace pictor::sched
