#include "schedulers/scheduler_config.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace pictor {

namespace {

template <class T>
std::optional<T> opt(const JsonConfig& j, const std::string& key) {
  if (!j.has(key)) return std::nullopt;
  return j.get<T>(key);
}

void require_one_of(const JsonConfig& j, const std::string& key, const std::optional<std::string>& value,
                    std::initializer_list<const char*> allowed) {
  if (!value) return;
  std::string list;
  for (const char* a : allowed) {
    if (*value == a) return;
    list += std::string(list.empty() ? "" : ", ") + a;
  }
  throw Unsupported(j.source() + ": field '" + key + "' = '" + *value + "' (supported: " + list + ")");
}

}  // namespace

SchedulerConfig SchedulerConfig::from_json(const JsonConfig& j) {
  if (!j.raw().is_object()) throw Error(j.source() + ": a scheduler config must be a JSON object");
  SchedulerConfig c;
  c.source = j.source();
  c.raw = j;
  c.class_name = j.get<std::string>("_class_name", "");
  c.num_train_timesteps = opt<int>(j, "num_train_timesteps");
  c.beta_start = opt<double>(j, "beta_start");
  c.beta_end = opt<double>(j, "beta_end");
  c.beta_schedule = opt<std::string>(j, "beta_schedule");
  if (j.has("trained_betas")) c.trained_betas = j.get<std::vector<double>>("trained_betas");
  c.prediction_type = opt<std::string>(j, "prediction_type");
  c.timestep_spacing = opt<std::string>(j, "timestep_spacing");
  c.steps_offset = opt<int>(j, "steps_offset");
  c.use_karras_sigmas = opt<bool>(j, "use_karras_sigmas");
  c.sigma_min = opt<double>(j, "sigma_min");
  c.sigma_max = opt<double>(j, "sigma_max");
  c.clip_sample = opt<bool>(j, "clip_sample");
  c.clip_sample_range = opt<double>(j, "clip_sample_range");
  c.set_alpha_to_one = opt<bool>(j, "set_alpha_to_one");
  c.rescale_betas_zero_snr = opt<bool>(j, "rescale_betas_zero_snr");
  c.original_inference_steps = opt<int>(j, "original_inference_steps");
  c.timestep_scaling = opt<double>(j, "timestep_scaling");

  require_one_of(j, "beta_schedule", c.beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"});
  require_one_of(j, "prediction_type", c.prediction_type, {"epsilon", "v_prediction", "sample"});
  require_one_of(j, "timestep_spacing", c.timestep_spacing, {"linspace", "leading", "trailing"});
  if (c.num_train_timesteps && (*c.num_train_timesteps < 2 || *c.num_train_timesteps > 100000))
    j.fail("num_train_timesteps", "must be between 2 and 100000");
  if (!c.trained_betas.empty()) {
    for (double b : c.trained_betas)
      if (!(b > 0 && b < 1)) j.fail("trained_betas", "every beta must lie in (0, 1)");
    if (c.num_train_timesteps && static_cast<int>(c.trained_betas.size()) != *c.num_train_timesteps)
      j.fail("trained_betas", "has " + std::to_string(c.trained_betas.size()) + " values but num_train_timesteps is " +
                                  std::to_string(*c.num_train_timesteps));
    c.num_train_timesteps = static_cast<int>(c.trained_betas.size());
  }
  for (const auto* key : {"beta_start", "beta_end"}) {
    auto v = opt<double>(j, key);
    if (v && !(*v > 0 && *v < 1)) j.fail(key, "must lie in (0, 1)");
  }
  if (c.steps_offset && (*c.steps_offset < 0 || *c.steps_offset > 1000)) j.fail("steps_offset", "must be 0..1000");
  if (c.original_inference_steps && *c.original_inference_steps < 1)
    j.fail("original_inference_steps", "must be at least 1");
  if (c.timestep_scaling && !(std::isfinite(*c.timestep_scaling) && *c.timestep_scaling > 0))
    j.fail("timestep_scaling", "must be a positive number");
  return c;
}

SchedulerConfig SchedulerConfig::load(const std::filesystem::path& file) {
  return from_json(JsonConfig::load(file));
}

}  // namespace pictor
