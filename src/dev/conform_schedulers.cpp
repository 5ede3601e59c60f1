// Golden conformance for the schedulers (case "6 schedulers"): every variant's timesteps, sigmas, start
// latents and full trajectory for a fixed sequence of model outputs, with the noise that diffusers drew
// inside step() replayed in order.
//
// Tolerances: integer timesteps (and the integer-valued float timesteps of non-Karras Euler) exact;
// Karras float timesteps 1e-4 absolute (case.json; they pass through log/exp in NumPy); every other
// float tensor 1e-5 x its absmax (case.json "re-derived formula" bound; the implementation aims at
// bit-exactness and reports the error it reaches).
#include <ATen/ATen.h>

#include <algorithm>

#include "dev/conform.hpp"
#include "schedulers/scheduler.hpp"

namespace pictor::dev {

namespace {

double rel_tol(const at::Tensor& expected) {
  double absmax = expected.numel() ? expected.abs().max().item<double>() : 0.0;
  return std::max(1e-5 * absmax, 1e-7);
}

at::Tensor stacked(const std::vector<at::Tensor>& xs) {
  return xs.empty() ? at::Tensor() : at::stack(xs);
}

void run_variant(const CaseDir& c, const std::string& key, const json& v, ConformReport& rep) {
  const std::string cls_full = v.at("class").get<std::string>();
  const std::string cls = cls_full.substr(cls_full.rfind('.') + 1);
  SchedulerConfig cfg =
      SchedulerConfig::from_json(JsonConfig(v.at("full_config"), "case.json:variants." + key + ".full_config"));
  const bool karras = cfg.use_karras_sigmas.value_or(false);
  auto s = make_scheduler(default_scheduler_for(cls), cfg);

  const int n = v.at("num_inference_steps").get<int>();
  s->set_timesteps(n);
  int start = 0;
  const bool img2img = v.contains("strength") && v.at("strength").is_number();
  if (img2img) start = s->set_strength(v.at("strength").get<double>());

  auto out = [&](const std::string& field) { return key + "." + field; };
  auto compare_timesteps = [&](const std::string& field, const at::Tensor& actual) {
    at::Tensor expected = c.outputs.get(out(field));
    if (karras && expected.scalar_type() != at::kLong)
      rep.close(out(field), actual, expected, 1e-4);
    else
      rep.exact(out(field), actual, expected);
    rep.check(out(field) + ".dtype", actual.scalar_type() == expected.scalar_type(),
              actual.scalar_type() == expected.scalar_type() ? "" : "dtype differs from diffusers");
  };
  compare_timesteps("all_timesteps", s->timesteps());
  compare_timesteps("timesteps", s->timesteps().slice(0, start));
  if (c.outputs.has(out("sigmas"))) {
    at::Tensor e = c.outputs.get(out("sigmas"));
    rep.close(out("sigmas"), s->sigmas(), e, rel_tol(e));
  }
  at::Tensor ins_e = c.outputs.get(out("init_noise_sigma"));
  rep.close(out("init_noise_sigma"), at::scalar_tensor(s->init_noise_sigma(), at::kFloat), ins_e, rel_tol(ins_e));

  at::Tensor x = img2img ? s->add_noise(c.inputs.get("img2img.init_latents"), c.inputs.get("img2img.noise"), start)
                         : c.inputs.get("sample") * s->init_noise_sigma();
  at::Tensor xs_e = c.outputs.get(out("x_start"));
  rep.close(out("x_start"), x, xs_e, rel_tol(xs_e));

  at::Tensor recorded = c.outputs.has(out("noise")) ? c.outputs.get(out("noise")) : at::Tensor();
  ReplayNoise noise(recorded);
  at::Tensor model_outputs = c.inputs.get("model_outputs");
  std::vector<at::Tensor> scaled, prev, x0;
  for (int i = start, j = 0; i < s->num_timesteps(); ++i, ++j) {
    scaled.push_back(s->scale_model_input(x, i));
    auto o = s->step(model_outputs[j], i, x, &noise);
    x = o.prev_sample;
    prev.push_back(x);
    x0.push_back(o.pred_original_sample);
  }
  for (auto [field, got] :
       {std::pair{"scaled_model_input", &scaled}, {"prev_sample", &prev}, {"pred_original_sample", &x0}}) {
    if (!c.outputs.has(out(field))) continue;  // DPM-Solver records no x0
    at::Tensor e = c.outputs.get(out(field));
    rep.close(out(field), stacked(*got), e, rel_tol(e));
  }
  const int64_t draws = recorded.defined() ? recorded.size(0) : 0;
  rep.check(out("noise_draws"), noise.used() == draws,
            std::to_string(noise.used()) + " draws made, " + std::to_string(draws) + " recorded");
}

void run_schedulers(const CaseDir& c, ConformReport& rep) {
  const json& variants = c.spec.at("variants");
  bool alphas_checked = false;
  for (auto it = variants.begin(); it != variants.end(); ++it) {
    if (!alphas_checked && c.outputs.has("alphas_cumprod")) {
      SchedulerConfig cfg = SchedulerConfig::from_json(JsonConfig(c.spec.at("base_config"), "case.json:base_config"));
      auto s = make_scheduler("euler", cfg);
      at::Tensor e = c.outputs.get("alphas_cumprod");
      rep.close("alphas_cumprod", s->alphas_cumprod(), e, rel_tol(e));
      alphas_checked = true;
    }
    try {
      run_variant(c, it.key(), it.value(), rep);
    } catch (const std::exception& e) {
      rep.check(it.key(), false, e.what());
    }
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM(
    "schedulers", [](const CaseDir& c) { return case_title_has(c, "schedulers"); }, run_schedulers);

}  // namespace pictor::dev
