#pragma once
// Noise-schedule math shared by the schedulers: betas, alphas_cumprod, the sigma table, timestep spacing,
// Karras sigmas and sigma -> timestep inversion.
//
// diffusers computes these partly in torch float32 and partly in NumPy float64; matching it bit for bit
// means doing each step in the same precision and the same operation order. The np_* helpers below
// reproduce the NumPy routines diffusers calls (linspace, arange, interp, round) with their exact
// floating-point sequence, so timesteps and sigmas come out identical.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pictor::sched {

// Everything that defines the training noise schedule, resolved from a scheduler config.
struct BetaSchedule {
  int num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;     // non-empty: used as is
  bool rescale_betas_zero_snr = false;
};

// float32 betas [num_train_timesteps], as diffusers builds them.
at::Tensor make_betas(const BetaSchedule& s);
// float32 cumprod(1 - betas). `clamp_terminal` sets the last value to 2^-24 when the betas were rescaled
// to zero terminal SNR (what the sigma-based schedulers do so that the first sigma stays finite).
at::Tensor make_alphas_cumprod(const BetaSchedule& s, bool clamp_terminal);

// float32 ((1 - a) / a) ** 0.5 for every training timestep, ascending in t.
std::vector<float> sigma_table(const at::Tensor& alphas_cumprod);

// numpy.linspace(start, stop, num, endpoint) in float64.
std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint = true);
// numpy.arange(start, stop, step) for float64 arguments.
std::vector<double> np_arange(double start, double stop, double step);
// numpy.round (half to even).
double np_round(double x);
// numpy.interp(x, arange(len(fp)), fp) for float32 fp.
double np_interp_index(double x, const std::vector<float>& fp);

// diffusers' _convert_to_karras: rho = 7 ramp from sigma_max down to sigma_min, float64.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int num_steps);
// diffusers' _sigma_to_t: fractional training timestep of `sigma`, interpolating log sigma linearly
// between neighbouring entries of `log_sigmas` (float32 log of the sigma table).
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);
// np.log of a float32 array as NumPy computes it on x86-64 (its SIMD approximation, not logf), so the
// Karras timesteps come out bit-identical to diffusers'.
std::vector<float> log_of(const std::vector<float>& v);

// Timestep spacing of "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2 (each
// scheduler family turns it into timesteps slightly differently, so that part lives with the scheduler).
enum class Spacing { linspace, leading, trailing };
Spacing parse_spacing(const std::string& s, const std::string& source);

}  // namespace pictor::sched
