#include "schedulers/sigmas.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace pictor::sched {

namespace {

// diffusers' betas_for_alpha_bar with the cosine alpha_bar of Nichol & Dhariwal (max_beta 0.999), in
// Python float64 then stored as float32.
at::Tensor cosine_betas(int n) {
  auto alpha_bar = [](double t) {
    double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  std::vector<float> betas(n);
  for (int i = 0; i < n; ++i) {
    double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
    betas[i] = static_cast<float>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return at::tensor(betas, at::kFloat);
}

// diffusers' rescale_zero_terminal_snr (arXiv 2305.08891, Algorithm 1), in float32 torch ops.
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  at::Tensor alphas = 1.0 - betas;
  at::Tensor sqrt_bar = at::cumprod(alphas, 0).sqrt();
  at::Tensor first = sqrt_bar[0].clone(), last = sqrt_bar[-1].clone();
  sqrt_bar = sqrt_bar - last;
  sqrt_bar = sqrt_bar * (first / (first - last));
  at::Tensor bar = at::pow(sqrt_bar, 2);
  at::Tensor ratios = bar.slice(0, 1) / bar.slice(0, 0, -1);
  return 1 - at::cat({bar.slice(0, 0, 1), ratios});
}

}  // namespace

at::Tensor make_betas(const BetaSchedule& s) {
  at::Tensor betas;
  if (!s.trained_betas.empty()) {
    betas = at::tensor(std::vector<float>(s.trained_betas.begin(), s.trained_betas.end()), at::kFloat);
  } else if (s.beta_schedule == "linear") {
    betas = at::linspace(s.beta_start, s.beta_end, s.num_train_timesteps, at::kFloat);
  } else if (s.beta_schedule == "scaled_linear") {
    // The latent-diffusion schedule: linear in sqrt(beta). Python's `x ** 0.5` is C pow().
    betas = at::pow(
        at::linspace(std::pow(s.beta_start, 0.5), std::pow(s.beta_end, 0.5), s.num_train_timesteps, at::kFloat), 2);
  } else if (s.beta_schedule == "squaredcos_cap_v2") {
    betas = cosine_betas(s.num_train_timesteps);
  } else {
    throw Unsupported("beta_schedule '" + s.beta_schedule + "'");
  }
  if (s.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  return betas;
}

at::Tensor make_alphas_cumprod(const BetaSchedule& s, bool clamp_terminal) {
  at::Tensor ac = at::cumprod(1.0 - make_betas(s), 0);
  if (s.rescale_betas_zero_snr && clamp_terminal) ac[-1] = std::ldexp(1.0, -24);
  return ac;
}

std::vector<float> sigma_table(const at::Tensor& alphas_cumprod) {
  at::Tensor s = at::pow((1 - alphas_cumprod) / alphas_cumprod, 0.5).contiguous();
  const float* p = s.data_ptr<float>();
  return std::vector<float>(p, p + s.numel());
}

std::vector<double> np_linspace(double start, double stop, int64_t num, bool endpoint) {
  std::vector<double> y(static_cast<size_t>(std::max<int64_t>(num, 0)));
  int64_t div = endpoint ? num - 1 : num;
  double delta = stop - start;
  double step = div > 0 ? delta / static_cast<double>(div) : 0.0;
  for (int64_t i = 0; i < num; ++i) {
    double k = static_cast<double>(i);
    if (div > 0 && step != 0)
      y[i] = k * step + start;
    else if (div > 0)  // NumPy's denormal-step branch
      y[i] = k / static_cast<double>(div) * delta + start;
    else
      y[i] = k * delta + start;
  }
  if (endpoint && num > 1) y[num - 1] = stop;
  return y;
}

std::vector<double> np_arange(double start, double stop, double step) {
  // NumPy fills a float arange as start + i * (second - first), with its length from ceil().
  double len = std::ceil((stop - start) / step);
  std::vector<double> y;
  if (!(len > 0)) return y;
  y.resize(static_cast<size_t>(len));
  y[0] = start;
  if (y.size() > 1) y[1] = start + step;
  double delta = y.size() > 1 ? y[1] - start : 0.0;
  for (size_t i = 2; i < y.size(); ++i) y[i] = start + static_cast<double>(i) * delta;
  return y;
}

double np_round(double x) {
  return std::nearbyint(x);  // default rounding mode: half to even, as numpy.round
}

double np_interp_index(double x, const std::vector<float>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (std::isnan(x)) return x;
  if (x <= 0) return fp[0];
  if (x >= static_cast<double>(n - 1)) return fp[n - 1];
  int64_t j = static_cast<int64_t>(std::floor(x));
  double xj = static_cast<double>(j);
  if (xj == x) return fp[j];
  double slope = (static_cast<double>(fp[j + 1]) - static_cast<double>(fp[j])) / (static_cast<double>(j + 1) - xj);
  return slope * (x - xj) + static_cast<double>(fp[j]);
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int num_steps) {
  const double rho = 7.0;
  std::vector<double> ramp = np_linspace(0, 1, num_steps);
  double min_inv_rho = std::pow(sigma_min, 1 / rho), max_inv_rho = std::pow(sigma_max, 1 / rho);
  std::vector<double> out(ramp.size());
  for (size_t i = 0; i < ramp.size(); ++i) out[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
  return out;
}

namespace {

// Natural log of a float32 as NumPy 1.2x computes np.log on float32 arrays on x86-64 with AVX2/AVX512
// (loops_exponent_log: a degree-5/5 rational approximation of log(1 + x) on the reduced mantissa, with
// fused multiply-adds). It differs from a correctly rounded logf by up to a few ulp, and the Karras
// timesteps inherit that difference, so matching diffusers means using the same approximation.
float numpy_simd_logf(float x) {
  if (!(x >= std::numeric_limits<float>::min()) || std::isinf(x)) return std::log(x);  // not in the table
  constexpr float p0 = 0.000000000000000000000e+00f, p1 = 9.999999999999998702752e-01f,
                  p2 = 2.112677543073053063722e+00f, p3 = 1.480000633576506585156e+00f,
                  p4 = 3.808837741388407920751e-01f, p5 = 2.589979117907922693523e-02f;
  constexpr float q0 = 1.000000000000000000000e+00f, q1 = 2.612677543073109236779e+00f,
                  q2 = 2.453006071784736363091e+00f, q3 = 9.864942958519418960339e-01f,
                  q4 = 1.546476374983906719538e-01f, q5 = 5.875095403124574342950e-03f;
  constexpr float ln2 = 0.693147180559945309417f, sqrt1_2 = 0.707106781186547524400844362104849039f;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  float exponent = static_cast<float>(static_cast<int32_t>(bits >> 23) - 126);
  uint32_t mbits = (bits & 0x7fffffu) | (126u << 23);  // mantissa scaled to [0.5, 1)
  float m;
  std::memcpy(&m, &mbits, sizeof m);
  if (m <= sqrt1_2) {
    m = m + m;
    exponent = exponent - 1.0f;
  }
  m = m - 1.0f;
  float num = std::fma(std::fma(std::fma(std::fma(std::fma(p5, m, p4), m, p3), m, p2), m, p1), m, p0);
  float den = std::fma(std::fma(std::fma(std::fma(std::fma(q5, m, q4), m, q3), m, q2), m, q1), m, q0);
  return std::fma(exponent, ln2, num / den);
}

}  // namespace

std::vector<float> log_of(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = numpy_simd_logf(v[i]);
  return out;
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  // In diffusers every operand below is a float32 NumPy array and the float64 log sigma a scalar, which
  // NumPy 1.x casts down to float32: the interpolation weight is computed in float32.
  const float log_sigma = static_cast<float>(std::log(std::max(sigma, 1e-10)));
  // Last table entry at or below log_sigma (0 when none), kept one short of the end.
  int64_t low = 0;
  for (int64_t i = 0; i < n; ++i)
    if (log_sigma - log_sigmas[i] >= 0) low = i;
  low = std::min(low, n - 2);
  const float lo = log_sigmas[low], hi = log_sigmas[low + 1];
  const float w = std::clamp((lo - log_sigma) / (lo - hi), 0.0f, 1.0f);
  return static_cast<double>(1 - w) * static_cast<double>(low) + static_cast<double>(w) * static_cast<double>(low + 1);
}

Spacing parse_spacing(const std::string& s, const std::string& source) {
  if (s == "linspace") return Spacing::linspace;
  if (s == "leading") return Spacing::leading;
  if (s == "trailing") return Spacing::trailing;
  throw Unsupported(source + ": field 'timestep_spacing' = '" + s + "' (supported: linspace, leading, trailing)");
}

}  // namespace pictor::sched
