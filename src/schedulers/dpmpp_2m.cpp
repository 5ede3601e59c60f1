// DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095), as diffusers' DPMSolverMultistepScheduler with
// algorithm_type "dpmsolver++" and solver_order 2: a multistep solver in log-SNR (lambda) that reuses
// the previous step's x0 prediction.
#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "schedulers/kinds.hpp"

namespace pictor::sched {

namespace {

class DpmppTwoM : public Scheduler {
 public:
  DpmppTwoM(const SchedulerConfig& c, bool karras)
      : Scheduler(karras ? "dpmpp_2m_karras" : "dpmpp_2m", c, resolve_betas(c, ClassDefaults{}),
                  /*clamp_terminal=*/true),
        spacing_(parse_spacing(c.timestep_spacing.value_or("linspace"), c.source)),
        steps_offset_(c.steps_offset.value_or(0)),
        karras_(karras),
        sigma_min_(c.sigma_min),
        sigma_max_(c.sigma_max) {
    const JsonConfig& r = c.raw;
    // The name fixes the algorithm (dpmsolver++, order 2); these settings change the math and are
    // implemented: solver_type, lower_order_final, euler_at_final, final_sigmas_type, lambda_min_clipped.
    solver_type_ = r.get<std::string>("solver_type", "midpoint");
    if (solver_type_ == "logrho" || solver_type_ == "bh1" || solver_type_ == "bh2") solver_type_ = "midpoint";
    if (solver_type_ != "midpoint" && solver_type_ != "heun") unsupported("solver_type", "'" + solver_type_ + "'");
    lower_order_final_ = r.get<bool>("lower_order_final", true);
    euler_at_final_ = r.get<bool>("euler_at_final", false);
    final_sigmas_type_ = r.get<std::string>("final_sigmas_type", "zero");
    if (final_sigmas_type_ != "zero" && final_sigmas_type_ != "sigma_min")
      unsupported("final_sigmas_type", "'" + final_sigmas_type_ + "'");
    if (r.has("lambda_min_clipped")) {
      // JSON has no -Infinity; diffusers writes it as a string or a huge negative number.
      const json& v = r.raw().at("lambda_min_clipped");
      if (v.is_number()) lambda_min_clipped_ = v.get<double>();
    }
    if (r.get<bool>("thresholding", false)) unsupported("thresholding", "true");
    if (r.get<bool>("use_lu_lambdas", false)) unsupported("use_lu_lambdas", "true");
    const std::string variance = r.get<std::string>("variance_type", "");
    if (!variance.empty()) unsupported("variance_type", "'" + variance + "'");
  }

  void set_timesteps(int n) override {
    check_steps_arg(n);
    num_inference_steps_ = n;
    // Clip the schedule where lambda(t) falls below lambda_min_clipped (for the cosine schedule).
    at::Tensor lambda_t = at::log(at::sqrt(alphas_cumprod_)) - at::log(at::sqrt(1 - alphas_cumprod_));
    const int clipped = static_cast<int>(at::flip(lambda_t, {0}).lt(lambda_min_clipped_).sum().item<int64_t>());
    const int last = num_train_timesteps_ - clipped;

    std::vector<double> ts;
    if (spacing_ == Spacing::linspace) {
      std::vector<double> l = np_linspace(0, last - 1, n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(np_round(l[i]));
    } else if (spacing_ == Spacing::leading) {
      const int ratio = last / (n + 1);
      for (int i = n; i >= 1; --i) ts.push_back(static_cast<double>(i * ratio + steps_offset_));
    } else {
      for (double t : np_arange(last, 0, -static_cast<double>(num_train_timesteps_) / n)) ts.push_back(np_round(t) - 1);
    }

    const std::vector<float> table = sigma_table(alphas_cumprod_);
    std::vector<double> sig;
    if (karras_) {
      const double lo = sigma_min_.value_or(table.front()), hi = sigma_max_.value_or(table.back());
      sig = karras_sigmas(lo, hi, n);
      const std::vector<float> log_sigmas = log_of(table);
      ts.clear();
      for (double s : sig) ts.push_back(np_round(sigma_to_t(s, log_sigmas)));
    } else {
      for (double t : ts) sig.push_back(np_interp_index(t, table));
    }
    std::vector<float> sig32(sig.begin(), sig.end());
    sig32.push_back(final_sigmas_type_ == "zero" ? 0.0f : table.front());

    std::vector<int64_t> its(ts.begin(), ts.end());
    timesteps_ = at::tensor(its, at::kLong);
    sigmas_ = at::tensor(sig32, at::kFloat);
    reset();
  }

  int set_strength(double strength) override {
    int start = Scheduler::set_strength(strength);
    reset();
    return start;
  }

  at::Tensor add_noise(const at::Tensor& original, const at::Tensor& noise, int i) const override {
    check_step(i);
    auto [alpha_t, sigma_t] = alpha_sigma(sigma(i).to(original.scalar_type()));
    return alpha_t * original + sigma_t * noise.to(original.device(), original.scalar_type());
  }

  StepOutput step(const at::Tensor& model_output, int i, const at::Tensor& sample, NoiseSource*) override {
    check_step(i);
    const int n = num_timesteps();
    const bool lower_order_final =
        i == n - 1 && (euler_at_final_ || (lower_order_final_ && n < 15) || final_sigmas_type_ == "zero");

    at::Tensor x0 = convert_model_output(model_output, sample, i);
    prev_x0_ = last_x0_;
    last_x0_ = x0;
    at::Tensor x = sample.to(at::kFloat);
    at::Tensor prev =
        (lower_order_nums_ < 1 || lower_order_final) ? first_order(x0, i, x) : second_order(last_x0_, prev_x0_, i, x);
    if (lower_order_nums_ < 2) ++lower_order_nums_;
    return {prev.to(model_output.scalar_type()), x0};
  }

 private:
  void reset() {
    last_x0_ = prev_x0_ = at::Tensor();
    lower_order_nums_ = 0;
  }

  // alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t (diffusers' _sigma_to_alpha_sigma_t;
  // Python's `1 / t` on a tensor is reciprocal(t) * 1).
  static std::pair<at::Tensor, at::Tensor> alpha_sigma(const at::Tensor& s) {
    at::Tensor alpha = at::reciprocal(at::pow(at::pow(s, 2) + 1, 0.5)) * 1;
    return {alpha, s * alpha};
  }
  static at::Tensor lambda(const at::Tensor& alpha, const at::Tensor& sigma) { return at::log(alpha) - at::log(sigma); }

  at::Tensor convert_model_output(const at::Tensor& model_output, const at::Tensor& sample, int i) const {
    auto [alpha_t, sigma_t] = alpha_sigma(sigma(i));
    switch (prediction_) {
      case Prediction::epsilon: return (sample - sigma_t * model_output) / alpha_t;
      case Prediction::v_prediction: return alpha_t * sample - sigma_t * model_output;
      case Prediction::sample: return model_output;
    }
    return {};
  }

  at::Tensor first_order(const at::Tensor& x0, int i, const at::Tensor& x) const {
    auto [alpha_t, sigma_t] = alpha_sigma(sigma(i + 1));
    auto [alpha_s, sigma_s] = alpha_sigma(sigma(i));
    at::Tensor h = lambda(alpha_t, sigma_t) - lambda(alpha_s, sigma_s);
    return (sigma_t / sigma_s) * x - (alpha_t * (at::exp(-h) - 1.0)) * x0;
  }

  at::Tensor second_order(const at::Tensor& m0, const at::Tensor& m1, int i, const at::Tensor& x) const {
    auto [alpha_t, sigma_t] = alpha_sigma(sigma(i + 1));
    auto [alpha_s0, sigma_s0] = alpha_sigma(sigma(i));
    auto [alpha_s1, sigma_s1] = alpha_sigma(sigma(i - 1));
    at::Tensor lambda_t = lambda(alpha_t, sigma_t), lambda_s0 = lambda(alpha_s0, sigma_s0),
               lambda_s1 = lambda(alpha_s1, sigma_s1);
    at::Tensor h = lambda_t - lambda_s0, h_0 = lambda_s0 - lambda_s1;
    at::Tensor r0 = h_0 / h;
    at::Tensor D0 = m0, D1 = (at::reciprocal(r0) * 1.0) * (m0 - m1);
    at::Tensor em1 = at::exp(-h) - 1.0;
    if (solver_type_ == "midpoint") return (sigma_t / sigma_s0) * x - (alpha_t * em1) * D0 - (alpha_t * em1) * 0.5 * D1;
    return (sigma_t / sigma_s0) * x - (alpha_t * em1) * D0 + (alpha_t * (em1 / h + 1.0)) * D1;
  }

  Spacing spacing_;
  int steps_offset_;
  bool karras_;
  std::optional<double> sigma_min_, sigma_max_;
  std::string solver_type_ = "midpoint", final_sigmas_type_ = "zero";
  bool lower_order_final_ = true, euler_at_final_ = false;
  double lambda_min_clipped_ = -std::numeric_limits<double>::infinity();
  at::Tensor last_x0_, prev_x0_;
  int lower_order_nums_ = 0;
};

}  // namespace

std::unique_ptr<Scheduler> make_dpmpp_2m(const SchedulerConfig& c, bool force_karras) {
  return std::make_unique<DpmppTwoM>(c, force_karras || c.use_karras_sigmas.value_or(false));
}

}  // namespace pictor::sched
