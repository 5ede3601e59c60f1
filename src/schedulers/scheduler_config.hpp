#pragma once
// A diffusers scheduler_config.json. Every diffusers scheduler class can read another class's config
// (diffusers' from_config: a pipeline swaps Euler for DDIM and keeps the noise schedule), and the classes
// have different defaults for absent keys (timestep_spacing is "linspace" for Euler but "leading" for
// DDIM), so fields the file leaves out stay empty here and each scheduler fills in its own class default.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"

namespace pictor {

struct SchedulerConfig {
  std::string source = "scheduler_config";  // file name for error messages
  std::string class_name;                   // "_class_name", empty when absent

  std::optional<int> num_train_timesteps;
  std::optional<double> beta_start, beta_end;
  std::optional<std::string> beta_schedule;     // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;            // empty: computed from beta_schedule
  std::optional<std::string> prediction_type;   // epsilon | v_prediction | sample
  std::optional<std::string> timestep_spacing;  // linspace | leading | trailing
  std::optional<int> steps_offset;
  std::optional<bool> use_karras_sigmas;
  std::optional<double> sigma_min, sigma_max;  // Karras range override (Euler)
  std::optional<bool> clip_sample;             // DDIM, LCM
  std::optional<double> clip_sample_range;
  std::optional<bool> set_alpha_to_one;  // DDIM, LCM
  std::optional<bool> rescale_betas_zero_snr;
  std::optional<int> original_inference_steps;  // LCM
  std::optional<double> timestep_scaling;       // LCM

  // The whole file: class-specific keys (thresholding, solver_type, interpolation_type ...) are read by
  // the scheduler that uses them, which refuses values it does not implement.
  JsonConfig raw;

  // Reads and type-checks the keys above; a value outside the supported set (e.g. beta_schedule
  // "sigmoid") throws Unsupported naming the file and field.
  static SchedulerConfig from_json(const JsonConfig& j);
  static SchedulerConfig load(const std::filesystem::path& file);
};

}  // namespace pictor
