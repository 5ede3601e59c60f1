// Stable Diffusion CPU benchmark with full-size SD 1.5 and SD 2.1 architectures and random weights (no
// files needed). Reports text encoding, one UNet evaluation (batch 1 and 2), VAE and TAESD decode at
// 512x512, peak RSS of a full txt2img run, and — measured in the same run — the machine's fp32 GEMM
// throughput, so the UNet efficiency ratio is independent of the machine:
//   efficiency = (UNet FLOPs / UNet time) / GEMM FLOP/s
// The txt2img run comes first so its peak RSS is not inflated by the micro-benchmarks after it.
// Usage: bench_sd [--threads N] [--only sd15|sd21] [--steps N] [--no-prepack] [--no-winograd] [--no-fused-attention]
// (the --no-* switches turn off one inference optimisation each, to measure what it brings)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "bench_common.hpp"
#include "core/json_file.hpp"
#include "core/runtime.hpp"
#include "dev/make_tiny_sd.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/autoencoder_tiny.hpp"
#include "models/clip_text.hpp"
#include "models/unet2d.hpp"
#include "nn/attention.hpp"
#include "nn/conv_prepack.hpp"
#include "nn/flop_counter.hpp"
#include "nn/param_source.hpp"
#include "nn/winograd_conv.hpp"
#include "pipelines/sd_pipeline.hpp"

using namespace pictor;
using namespace pictor::bench;

namespace {

double current_rss_gib() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose(f);
  }
  return double(rss) * 4096.0 / (1024.0 * 1024.0 * 1024.0);
}

json unet_config(bool sd21) {
  json j = {
      {"_class_name", "UNet2DConditionModel"},
      {"act_fn", "silu"},
      {"block_out_channels", {320, 640, 1280, 1280}},
      {"cross_attention_dim", sd21 ? 1024 : 768},
      {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
      {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
      {"downsample_padding", 1},
      {"flip_sin_to_cos", true},
      {"freq_shift", 0},
      {"in_channels", 4},
      {"out_channels", 4},
      {"layers_per_block", 2},
      {"mid_block_scale_factor", 1},
      {"norm_eps", 1e-5},
      {"norm_num_groups", 32},
      {"sample_size", 64},
      {"use_linear_projection", sd21},
      {"upcast_attention", false}};
  if (sd21)
    j["attention_head_dim"] = {5, 10, 20, 20};
  else
    j["attention_head_dim"] = 8;
  return j;
}

json text_config(bool sd21) {
  return {{"architectures", {"CLIPTextModel"}},
          {"vocab_size", 49408},
          {"hidden_size", sd21 ? 1024 : 768},
          {"intermediate_size", sd21 ? 4096 : 3072},
          {"num_hidden_layers", sd21 ? 23 : 12},
          {"num_attention_heads", sd21 ? 16 : 12},
          {"max_position_embeddings", 77},
          {"hidden_act", sd21 ? "gelu" : "quick_gelu"},
          {"layer_norm_eps", 1e-5},
          {"projection_dim", 768},
          {"bos_token_id", 0},
          {"eos_token_id", 2},
          {"pad_token_id", 1}};
}

json vae_config() {
  return {
      {"_class_name", "AutoencoderKL"},
      {"act_fn", "silu"},
      {"block_out_channels", {128, 256, 512, 512}},
      {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
      {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}},
      {"in_channels", 3},
      {"out_channels", 3},
      {"latent_channels", 4},
      {"layers_per_block", 2},
      {"norm_num_groups", 32},
      {"sample_size", 512},
      {"scaling_factor", 0.18215}};
}

json taesd_config() {
  return {{"_class_name", "AutoencoderTiny"},
          {"act_fn", "relu"},
          {"in_channels", 3},
          {"out_channels", 3},
          {"latent_channels", 4},
          {"encoder_block_out_channels", {64, 64, 64, 64}},
          {"decoder_block_out_channels", {64, 64, 64, 64}},
          {"num_encoder_blocks", {1, 3, 3, 3}},
          {"num_decoder_blocks", {3, 3, 3, 1}},
          {"latent_magnitude", 3},
          {"latent_shift", 0.5},
          {"scaling_factor", 1.0},
          {"upsampling_scaling_factor", 2}};
}

template <class Config>
Config cfg(const json& j, const char* what) {
  return Config::from_json(JsonConfig(j, what));
}

void bench_model(bool sd21, double gemm, int steps) {
  const char* name = sd21 ? "SD 2.1" : "SD 1.5";
  std::printf("\n== %s architecture (random weights), 512x512 ==\n", name);
  nn::RandomParams params(42);
  auto t = Clock::now();
  pipelines::StableDiffusionModel m;
  m.name = sd21 ? "bench-sd21" : "bench-sd15";
  m.text_encoder =
      std::make_unique<models::ClipTextModel>(cfg<models::ClipTextConfig>(text_config(sd21), "sd text config"), params);
  m.unet = std::make_unique<models::UNet2DConditionModel>(cfg<models::UNetConfig>(unet_config(sd21), "sd unet config"),
                                                          params);
  m.vae =
      std::make_unique<models::AutoencoderKL>(cfg<models::AutoencoderKLConfig>(vae_config(), "sd vae config"), params);
  m.taesd = std::make_unique<models::AutoencoderTiny>(
      cfg<models::AutoencoderTinyConfig>(taesd_config(), "taesd config"), params);
  std::printf("build (random init)        %8.2f s   RSS %.2f GiB\n", seconds_since(t), current_rss_gib());
  auto tokdir = std::filesystem::temp_directory_path() / "pictor-bench-tokenizer";
  dev::write_tiny_clip_tokenizer(tokdir);
  m.tokenizer = tokenizers::ClipTokenizer::load(tokdir);
  m.scheduler_config = SchedulerConfig::from_json(JsonConfig({{"beta_start", 0.00085},
                                                              {"beta_end", 0.012},
                                                              {"beta_schedule", "scaled_linear"},
                                                              {"num_train_timesteps", 1000},
                                                              {"steps_offset", 1},
                                                              {"timestep_spacing", "leading"},
                                                              {"prediction_type", sd21 ? "v_prediction" : "epsilon"}},
                                                             "bench scheduler config"));
  m.scheduler_class = "EulerDiscreteScheduler";

  c10::InferenceMode guard;
  pipelines::SdRequest r;
  r.prompt = "a photograph of an astronaut riding a horse";
  r.negative_prompt = "blurry";
  r.steps = steps;
  r.guidance = 7.5;
  r.sampler = "euler";
  r.seed = 1;
  t = Clock::now();
  pipelines::run_stable_diffusion(m, r);
  std::printf("txt2img %d steps (CFG)      %8.2f s   peak RSS (build + txt2img) %.2f GiB (target <= 5.5 for SD 1.5)\n",
              steps, seconds_since(t), peak_rss_gib());

  at::Tensor ids = at::randint(0, 49408, {1, 77}, at::kLong);
  double t_text = best_time(3, [&] { m.text_encoder->forward(ids); });
  std::printf("text encoding (1x77)       %8.3f s\n", t_text);

  const int64_t D = sd21 ? 1024 : 768;
  for (int64_t batch : {1, 2}) {
    at::Tensor x = at::randn({batch, 4, 64, 64}), ctx = at::randn({batch, 77, D}), ts = at::tensor(500.0);
    nn::FlopCounter::start();
    m.unet->forward(x, ts, ctx);
    const double flops = nn::FlopCounter::stop();
    const double tu = best_time(2, [&] { m.unet->forward(x, ts, ctx); });
    const double achieved = flops / tu / 1e9;
    std::printf("UNet batch %ld               %8.3f s   %.3f TFLOP  %.1f GFLOP/s  efficiency %.2f\n", long(batch), tu,
                flops / 1e12, achieved, achieved / gemm);
  }
  at::Tensor lat = at::randn({1, 4, 64, 64});
  double t_vae = best_time(1, [&] { m.vae->decode(lat); });
  std::printf("VAE decode 512x512         %8.3f s\n", t_vae);
  double t_taesd = best_time(3, [&] { m.taesd->decode(lat); });
  std::printf("TAESD decode 512x512       %8.3f s   (%.1fx faster than the VAE)\n", t_taesd, t_vae / t_taesd);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, steps = 4;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc)
      steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-prepack"))
      nn::set_conv_prepacking(false);
    else if (!std::strcmp(argv[i], "--no-winograd"))
      nn::winograd::set_enabled(false);
    else if (!std::strcmp(argv[i], "--no-fused-attention"))
      nn::set_fused_attention(false);
    else {
      std::fprintf(stderr,
                   "usage: bench_sd [--threads N] [--only sd15|sd21] [--steps N] [--no-prepack] [--no-winograd] "
                   "[--no-fused-attention]\n");
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // show each figure as soon as it is measured
  set_threads(threads);
  std::printf("threads %d (%s), conv prepacking %s, Winograd 3x3 convolutions %s, fused attention %s\n",
              at::get_num_threads(), blas_threading().c_str(), nn::conv_prepacking() ? "on" : "off",
              nn::winograd::enabled() ? "on" : "off", nn::fused_attention() ? "on" : "off");
  const double gemm = gemm_gflops();
  std::printf("fp32 GEMM (2048^3, best of 5)   %.1f GFLOP/s\n", gemm);
  if (only.empty() || only == "sd15") bench_model(false, gemm, steps);
  if (only.empty() || only == "sd21") bench_model(true, gemm, steps);
  return 0;
}
