// Schedulers and noise sources: the diffusers golden trajectories, seeded noise that matches PyTorch and
// A1111, img2img step selection, class defaults and config errors.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "schedulers/noise.hpp"
#include "schedulers/scheduler.hpp"
#include "support.hpp"

using namespace pictor;
namespace fs = std::filesystem;

namespace {

// The scheduler_config.json of Stable Diffusion 1.5 (written by PNDMScheduler).
SchedulerConfig sd15_config() {
  json j = {{"_class_name", "PNDMScheduler"}, {"beta_end", 0.012},      {"beta_schedule", "scaled_linear"},
            {"beta_start", 0.00085},          {"clip_sample", false},   {"num_train_timesteps", 1000},
            {"set_alpha_to_one", false},      {"skip_prk_steps", true}, {"steps_offset", 1},
            {"trained_betas", nullptr}};
  return SchedulerConfig::from_json(JsonConfig(j, "scheduler_config.json"));
}

SchedulerConfig config_with(const json& extra) {
  json j = {{"beta_start", 0.00085}, {"beta_end", 0.012}, {"beta_schedule", "scaled_linear"}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return SchedulerConfig::from_json(JsonConfig(j, "scheduler_config.json"));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<int64_t> as_ints(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST(SchedulersGolden, AllVariantsMatchDiffusers) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / "sd" / "schedulers", &kind);
  EXPECT_EQ(kind, "schedulers");
  EXPECT_GT(rep.results().size(), 500u);
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

TEST(TorchCpuNoise, MatchesTorchRandnSeedZero) {
  // PyTorch fills tensors of fewer than 16 floats one value at a time and larger ones 16 at a time
  // (different Box-Muller pairing), so a latent does NOT start with the famous randn(3) values.
  // torch.randn(3, generator=torch.Generator("cpu").manual_seed(0)) = [1.5410, -0.2934, -2.1788]
  at::Tensor small = TorchCpuNoise(0).randn({3});
  EXPECT_NEAR(small[0].item<float>(), 1.5410f, 1e-4);
  EXPECT_NEAR(small[1].item<float>(), -0.2934f, 1e-4);
  EXPECT_NEAR(small[2].item<float>(), -2.1788f, 1e-4);
  // torch.randn(1, 4, 64, 64, generator=...manual_seed(0)).flatten()[:4] = [-1.1258, -1.1524, -0.2506, -0.4339]
  at::Tensor x = TorchCpuNoise(0).randn({1, 4, 64, 64});
  ASSERT_EQ(x.scalar_type(), at::kFloat);
  at::Tensor f = x.flatten();
  EXPECT_NEAR(f[0].item<float>(), -1.1258f, 1e-4);
  EXPECT_NEAR(f[1].item<float>(), -1.1524f, 1e-4);
  EXPECT_NEAR(f[2].item<float>(), -0.2506f, 1e-4);
  EXPECT_NEAR(f[3].item<float>(), -0.4339f, 1e-4);
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.03);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 0.03);
}

TEST(TorchCpuNoise, ReproducibleStreamAndThreadIndependent) {
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  TorchCpuNoise a(1234);
  at::Tensor a1 = a.randn({1, 4, 64, 64}), a2 = a.randn({1, 4, 64, 64});
  at::set_num_threads(2);
  TorchCpuNoise b(1234);
  at::Tensor b1 = b.randn({1, 4, 64, 64}), b2 = b.randn({1, 4, 64, 64});
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(a1, b1));
  EXPECT_TRUE(at::equal(a2, b2));
  EXPECT_FALSE(at::equal(a1, a2));  // the stream continues
  EXPECT_FALSE(at::equal(a1, TorchCpuNoise(1235).randn({1, 4, 64, 64})));
}

TEST(A1111GpuNoise, MatchesRngPhiloxReference) {
  // The docstring of A1111's modules/rng_philox.py: Generator(seed=0).randn(shape=(3, 4)), which is also
  // torch.randn(3, 4, device="cuda") after torch.manual_seed(0). Our float64 Box-Muller (A1111's code) agrees
  // with these printed values to 2 float32 ulp (the GPU's float32 sin/log round differently).
  const float expected[12] = {-0.92466259f, -0.42534415f, -2.6438457f,  0.14518388f,  -0.12086647f, -0.57972564f,
                              -0.62285122f, -0.32838709f, -1.07454231f, -0.36314407f, -1.67105067f, 2.26550497f};
  A1111GpuNoise noise(0);
  at::Tensor x = noise.randn({3, 4});
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 4}));
  at::Tensor f = x.flatten();
  for (int i = 0; i < 12; ++i)
    EXPECT_NEAR(f[i].item<float>(), expected[i], 2.5e-7 * std::max(1.0f, std::fabs(expected[i]))) << "element " << i;
}

TEST(A1111GpuNoise, OffsetAdvancesAndThreadIndependent) {
  A1111GpuNoise a(42), b(42);
  at::set_num_threads(1);
  at::Tensor a1 = a.randn({1, 4, 64, 64});
  at::set_num_threads(2);
  at::Tensor b1 = b.randn({1, 4, 64, 64});
  EXPECT_TRUE(at::equal(a1, b1));
  // Element i of a draw does not depend on the shape (its counter is the element index).
  EXPECT_TRUE(at::equal(A1111GpuNoise(42).randn({8}), a1.flatten().slice(0, 0, 8)));
  EXPECT_FALSE(at::equal(a.randn({1, 4, 64, 64}), a1));  // second call: next offset
  EXPECT_NEAR(a1.mean().item<double>(), 0.0, 0.03);
  EXPECT_NEAR(a1.std().item<double>(), 1.0, 0.03);
}

TEST(NoiseSources, FactoryAndReplay) {
  EXPECT_TRUE(at::equal(make_noise_source("torch", 7)->randn({5}), TorchCpuNoise(7).randn({5})));
  EXPECT_TRUE(at::equal(make_noise_source("a1111_gpu", 7)->randn({5}), A1111GpuNoise(7).randn({5})));
  EXPECT_NE(error_of([] { make_noise_source("cuda", 1); }).find("torch, a1111_gpu"), std::string::npos);
  ReplayNoise r(at::arange(6, at::kFloat).reshape({2, 3}));
  EXPECT_EQ(r.randn({3})[2].item<float>(), 2.0f);
  EXPECT_NE(error_of([&] { r.randn({4}); }).find("shape"), std::string::npos);
  EXPECT_EQ(r.randn({3})[0].item<float>(), 3.0f);
  EXPECT_NE(error_of([&] { r.randn({3}); }).find("only 2 recorded"), std::string::npos);
}

TEST(Schedulers, ClassDefaultsFollowDiffusersFromConfig) {
  // SD 1.5's PNDM config: DDIM defaults to "leading" spacing (981 ... 1), Euler to "linspace" (999 ... 0).
  auto ddim = make_scheduler("ddim", sd15_config());
  ddim->set_timesteps(50);
  std::vector<int64_t> t = as_ints(ddim->timesteps());
  ASSERT_EQ(t.size(), 50u);
  EXPECT_EQ(t.front(), 981);
  EXPECT_EQ(t[1], 961);
  EXPECT_EQ(t.back(), 1);
  EXPECT_EQ(ddim->timesteps().scalar_type(), at::kLong);

  auto euler = make_scheduler("euler", sd15_config());
  euler->set_timesteps(50);
  EXPECT_EQ(euler->timesteps().scalar_type(), at::kFloat);
  EXPECT_EQ(euler->timestep(0), 999.0);
  EXPECT_EQ(euler->timestep(49), 0.0);
  EXPECT_NEAR(euler->init_noise_sigma(), 14.6146, 1e-4);
  EXPECT_EQ(euler->sigmas().size(0), 51);
  EXPECT_EQ(euler->sigmas()[50].item<float>(), 0.0f);

  EXPECT_EQ(default_scheduler_for("PNDMScheduler"), "euler");
  EXPECT_EQ(default_scheduler_for("EulerAncestralDiscreteScheduler"), "euler_a");
  EXPECT_EQ(default_scheduler_for("DPMSolverMultistepScheduler"), "dpmpp_2m");
  EXPECT_EQ(default_scheduler_for("LCMScheduler"), "lcm");
  EXPECT_EQ(default_scheduler_for("DDIMScheduler"), "ddim");
  for (const auto& name : scheduler_names()) {
    auto s = make_scheduler(name, sd15_config());
    EXPECT_EQ(s->name(), name);
    s->set_timesteps(4);
    EXPECT_EQ(s->num_timesteps(), 4) << name;
  }
}

TEST(Schedulers, Img2ImgStrengthSelectsSteps) {
  auto s = make_scheduler("euler", sd15_config());
  s->set_timesteps(20);
  EXPECT_EQ(s->set_strength(0.5), 10);  // 10 of 20 steps run
  EXPECT_EQ(s->set_strength(1.0), 0);
  EXPECT_EQ(s->set_strength(0.75), 5);
  s->set_timesteps(4);
  EXPECT_EQ(s->set_strength(0.6), 2);  // int(4 * 0.6) = 2 steps
  EXPECT_NE(error_of([&] { s->set_strength(0.1); }).find("leaves no denoising step"), std::string::npos);
  EXPECT_NE(error_of([&] { s->set_strength(1.5); }).find("between 0 and 1"), std::string::npos);

  // LCM keeps all n steps, spread over the first half of its distillation schedule.
  auto lcm = make_scheduler("lcm", sd15_config());
  lcm->set_timesteps(4);
  EXPECT_EQ(as_ints(lcm->timesteps()), (std::vector<int64_t>{999, 759, 499, 259}));
  EXPECT_EQ(lcm->set_strength(0.5), 0);
  EXPECT_EQ(as_ints(lcm->timesteps()), (std::vector<int64_t>{499, 379, 259, 139}));
  EXPECT_NE(error_of([&] { lcm->set_strength(0.02); }).find("original_inference_steps x strength"), std::string::npos);
}

TEST(Schedulers, StepIndexChecked) {
  auto s = make_scheduler("dpmpp_2m", sd15_config());
  at::Tensor x = at::zeros({1, 4, 8, 8});
  EXPECT_NE(error_of([&] { s->step(x, 0, x, nullptr); }).find("set_timesteps"), std::string::npos);
  s->set_timesteps(4);
  EXPECT_NE(error_of([&] { s->step(x, 4, x, nullptr); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { s->set_timesteps(0); }).find("between 1 and 1000"), std::string::npos);
  auto a = make_scheduler("euler_a", sd15_config());
  a->set_timesteps(4);
  EXPECT_NE(error_of([&] { a->step(x, 0, x, nullptr); }).find("noise source"), std::string::npos);
}

TEST(Schedulers, BadConfigValuesAreRefusedByName) {
  auto unsupported = [](const json& extra, const std::string& scheduler = "euler") {
    try {
      make_scheduler(scheduler, config_with(extra));
    } catch (const Unsupported& e) {
      return std::string(e.what());
    } catch (const Error& e) {
      return "wrong error type: " + std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::string e = unsupported({{"beta_schedule", "sigmoid"}});
  EXPECT_NE(e.find("scheduler_config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("beta_schedule"), std::string::npos) << e;
  EXPECT_NE(unsupported({{"prediction_type", "flow"}}).find("prediction_type"), std::string::npos);
  EXPECT_NE(unsupported({{"timestep_spacing", "karras"}}).find("timestep_spacing"), std::string::npos);
  EXPECT_NE(unsupported({{"interpolation_type", "log_linear"}}).find("interpolation_type"), std::string::npos);
  EXPECT_NE(unsupported({{"timestep_type", "continuous"}}).find("timestep_type"), std::string::npos);
  EXPECT_NE(unsupported({{"thresholding", true}}, "ddim").find("thresholding"), std::string::npos);
  EXPECT_NE(unsupported({{"thresholding", true}}, "dpmpp_2m").find("thresholding"), std::string::npos);
  EXPECT_NE(unsupported({{"solver_type", "bogus"}}, "dpmpp_2m").find("solver_type"), std::string::npos);
  EXPECT_NE(unsupported({{"variance_type", "learned_range"}}, "dpmpp_2m").find("variance_type"), std::string::npos);
  EXPECT_NE(unsupported({{"prediction_type", "sample"}}, "euler_a").find("prediction_type"), std::string::npos);
  // A key of another class is ignored, as diffusers does: Euler has no thresholding.
  EXPECT_EQ(unsupported({{"thresholding", true}}, "euler"), "(no error)");

  EXPECT_NE(error_of([] {
              config_with({{"beta_start", "small"}});
            }).find("'beta_start' has the wrong type"),
            std::string::npos);
  EXPECT_NE(error_of([] { config_with({{"beta_end", 2.0}}); }).find("beta_end"), std::string::npos);
  EXPECT_NE(error_of([] {
              config_with({{"trained_betas", {0.1, 0.2}}, {"num_train_timesteps", 3}});
            }).find("trained_betas"),
            std::string::npos);
  EXPECT_NE(error_of([] { make_scheduler("heun", config_with({})); }).find("known: euler"), std::string::npos);
}

TEST(Schedulers, ReadsPythonJsonWithInfinity) {
  // diffusers writes DPMSolverMultistepScheduler configs with "lambda_min_clipped": -Infinity.
  fs::path d = test::temp_dir("sched");
  std::ofstream(d / "scheduler_config.json")
      << R"({"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "lambda_min_clipped": -Infinity, "note": "Infinity NaN stay text"})";
  SchedulerConfig c = SchedulerConfig::load(d / "scheduler_config.json");
  EXPECT_EQ(c.class_name, "DPMSolverMultistepScheduler");
  EXPECT_EQ(c.raw.get<std::string>("note"), "Infinity NaN stay text");
  auto s = make_scheduler(default_scheduler_for(c.class_name), c);
  s->set_timesteps(4);
  EXPECT_EQ(as_ints(s->timesteps()), (std::vector<int64_t>{999, 749, 500, 250}));
}

TEST(Schedulers, TrainedBetasAndCosineSchedule) {
  std::vector<double> betas(1000, 0.01);
  auto s = make_scheduler("ddim", config_with({{"trained_betas", betas}}));
  EXPECT_NEAR(s->alphas_cumprod()[1].item<double>(), 0.99 * 0.99, 1e-6);
  auto cos = make_scheduler("dpmpp_2m", config_with({{"beta_schedule", "squaredcos_cap_v2"}}));
  cos->set_timesteps(10);
  EXPECT_TRUE(at::isfinite(cos->sigmas()).all().item<bool>());
  EXPECT_GT(cos->alphas_cumprod()[0].item<double>(), 0.999);
}
