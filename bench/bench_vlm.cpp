// Image-to-text CPU benchmark with SmolVLM-256M-Instruct- and SmolVLM-Instruct (2B)-shaped Idefics3 models
// and random weights (no files needed; the configs below are the published config.json values). Reports
// image preprocessing of a 1024x768 image, the vision encoder + connector on one frame, prompt prefill and
// KV-cached decode throughput and peak RSS, and — measured in the same run — the machine's memory read
// bandwidth and fp32 GEMM throughput, so the two efficiency ratios are independent of the machine:
//   decode efficiency = (LM weight bytes streamed per token * tokens/s) / read bandwidth
//   encode efficiency = (encoder FLOPs / encoder time) / GEMM FLOP/s
// The model benchmarks run before the bandwidth probe so its 2 GiB of buffers do not inflate the first
// model's peak RSS.
// --int8-load builds the language model with int8 weights layer by layer, as `pictor describe --int8` loads
// it, and skips the fp32 language-model runs: its peak RSS is what an int8 user needs.
// Usage: bench_vlm [--threads N] [--only 256m|2b] [--prompt N] [--decode N] [--int8-load]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/json_file.hpp"
#include "core/runtime.hpp"
#include "formats/image.hpp"
#include "models/idefics3.hpp"
#include "models/idefics3_processor.hpp"
#include "models/kv_cache.hpp"
#include "nn/flop_counter.hpp"
#include "nn/param_source.hpp"

using namespace pictor;
using namespace pictor::bench;

namespace {

struct Bandwidth {
  double read_gbs = 0;  // at::sum over 1 GiB: bytes read / time
  double copy_gbs = 0;  // 1 GiB -> 1 GiB copy: (bytes read + bytes written) / time
};

Bandwidth memory_bandwidth() {
  const int64_t n = (int64_t(1) << 30) / int64_t(sizeof(float));
  at::Tensor src = at::ones({n}), dst = at::empty({n});
  dst.fill_(0);  // fault the pages in before timing
  const double bytes = double(n) * sizeof(float);
  Bandwidth bw;
  volatile float sink = 0;
  bw.read_gbs = bytes / best_time(5, [&] { sink = src.sum().item<float>(); }) / 1e9;
  bw.copy_gbs = 2.0 * bytes / best_time(5, [&] { dst.copy_(src); }) / 1e9;
  (void)sink;
  return bw;
}

// Published config.json values (text_config / vision_config fields the port reads).
json smolvlm_256m_config() {
  return {{"model_type", "idefics3"},
          {"image_token_id", 49190},
          {"scale_factor", 4},
          {"vision_config",
           {{"model_type", "idefics3"},
            {"hidden_size", 768},
            {"intermediate_size", 3072},
            {"num_hidden_layers", 12},
            {"num_attention_heads", 12},
            {"num_channels", 3},
            {"image_size", 512},
            {"patch_size", 16},
            {"hidden_act", "gelu_pytorch_tanh"},
            {"layer_norm_eps", 1e-6}}},
          {"text_config",
           {{"model_type", "llama"},
            {"vocab_size", 49280},
            {"hidden_size", 576},
            {"intermediate_size", 1536},
            {"num_hidden_layers", 30},
            {"num_attention_heads", 9},
            {"num_key_value_heads", 3},
            {"head_dim", 64},
            {"hidden_act", "silu"},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 100000.0},
            {"max_position_embeddings", 8192},
            {"tie_word_embeddings", false},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"pad_token_id", 2}}}};
}

json smolvlm_2b_config() {
  return {{"model_type", "idefics3"},
          {"image_token_id", 49153},
          {"scale_factor", 3},
          {"vision_config",
           {{"model_type", "idefics3"},
            {"hidden_size", 1152},
            {"intermediate_size", 4304},
            {"num_hidden_layers", 27},
            {"num_attention_heads", 16},
            {"num_channels", 3},
            // Published: image_size 384 with patch_size 14 (transformers' stride-14 convolution drops the
            // last 6 pixels: 27x27 patches; the port floors the grid the same way). The bench states the
            // grid exactly, 378 = 27 * 14: the same 729 patches and the same compute.
            {"image_size", 378},
            {"patch_size", 14},
            {"hidden_act", "gelu_pytorch_tanh"},
            {"layer_norm_eps", 1e-6}}},
          {"text_config",
           {{"model_type", "llama"},
            {"vocab_size", 49155},
            {"hidden_size", 2048},
            {"intermediate_size", 8192},
            {"num_hidden_layers", 24},
            {"num_attention_heads", 32},
            {"num_key_value_heads", 32},
            {"head_dim", 64},
            {"hidden_act", "silu"},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 273768.0},
            {"max_position_embeddings", 16384},
            {"tie_word_embeddings", false},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"pad_token_id", 2}}}};
}

// preprocessor_config.json of the two models: longest edge 4 x the frame side, Lanczos, splitting on.
json preprocessor_config(int64_t frame_side) {
  return {{"image_processor_type", "Idefics3ImageProcessor"},
          {"do_convert_rgb", true},
          {"do_resize", true},
          {"size", {{"longest_edge", 4 * frame_side}}},
          {"resample", 1},
          {"do_image_splitting", true},
          {"max_image_size", {{"longest_edge", frame_side}}},
          {"do_rescale", true},
          {"rescale_factor", 1.0 / 255.0},
          {"do_normalize", true},
          {"image_mean", {0.5, 0.5, 0.5}},
          {"image_std", {0.5, 0.5, 0.5}},
          {"do_pad", true}};
}

// A deterministic photo-like 8-bit RGB image (gradients plus texture, so resampling does real work).
Image synthetic_image(int w, int h) {
  Image img(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t((x * 255) / w);
      p[1] = uint8_t((y * 255) / h);
      p[2] = uint8_t(((x ^ y) * 37) & 0xff);
    }
  return img;
}

// Parameters one decode step must stream from memory: every decoder layer, the final norm and the
// lm_head matrix. The embedding table is not streamed (one row is gathered), so it is not counted.
double lm_streamed_params(const models::LlamaConfig& c) {
  const double H = double(c.hidden_size), I = double(c.intermediate_size), hd = double(c.head_dim);
  const double attn = H * hd * double(c.num_attention_heads) * 2 + H * hd * double(c.num_key_value_heads) * 2;
  const double layer = attn + 3 * H * I + 2 * H;
  return double(c.num_hidden_layers) * layer + H + double(c.vocab_size) * H;
}

struct ModelResult {
  std::string name;
  double weight_bytes = 0, decode_tps = 0, encoder_flops = 0, encoder_s = 0;
  double int8_weight_bytes = 0, int8_decode_tps = 0;
};

ModelResult bench_model(const std::string& name, const json& config_json, int64_t frame_side, int prompt_tokens,
                        int decode_tokens, bool int8_load) {
  std::printf("\n== %s architecture (random weights, %s) ==\n", name.c_str(),
              int8_load ? "int8 language model built layer by layer" : "fp32");
  ModelResult r;
  r.name = name;
  auto cfg = models::Idefics3Config::from_json(JsonConfig(config_json, name + " config"));
  cfg.text.int8_weights = int8_load;
  nn::RandomParams params(42);
  auto t = Clock::now();
  models::Idefics3Model model(cfg, params);
  const double lm_params = lm_streamed_params(cfg.text);
  r.weight_bytes = lm_params * sizeof(float);
  std::printf("build (random init)          %8.2f s   LM streamed params %.1f M (%.2f GB fp32)\n", seconds_since(t),
              lm_params / 1e6, r.weight_bytes / 1e9);

  // Image preprocessing: the real processor settings of the model on a 1024x768 image.
  const models::Idefics3Processor processor(models::Idefics3ProcessorConfig::from_json(
      JsonConfig(preprocessor_config(frame_side), name + " preprocessor config")));
  const Image image = synthetic_image(1024, 768);
  models::Idefics3Batch batch;
  const double t_pre = best_time(3, [&] { batch = processor.preprocess({{image}}); });
  const auto& grid = batch.grids.at(0).at(0);
  std::printf("preprocess 1024x768          %8.1f ms  -> %ld frames of %ldx%ld (%ldx%ld tiles + global)\n", t_pre * 1e3,
              long(batch.pixel_values.size(1)), long(frame_side), long(frame_side), long(grid.rows), long(grid.cols));

  c10::InferenceMode guard;
  // Vision encoder + connector on one frame.
  // One frame, cropped to the encoder's image_size (the 2B stand-in's 378 inside its 384 frames).
  const int64_t side = cfg.vision.image_size;
  const at::Tensor frame = batch.pixel_values.narrow(1, 0, 1).narrow(3, 0, side).narrow(4, 0, side).contiguous();
  nn::FlopCounter::start();
  at::Tensor feats = model.encode_images(frame);
  const double counted = nn::FlopCounter::stop();
  r.encoder_flops = counted;  // linear, conv and attention matmuls, as nn::FlopCounter counts them
  r.encoder_s = best_time(2, [&] { feats = model.encode_images(frame); });
  std::printf("vision encoder + connector   %8.1f ms / frame  %.1f GFLOP  %.1f GFLOP/s  -> %ld tokens\n",
              r.encoder_s * 1e3, r.encoder_flops / 1e9, r.encoder_flops / r.encoder_s / 1e9, long(feats.size(1)));
  std::printf("  whole image (%ld frames) estimate %.2f s\n", long(batch.pixel_values.size(1)),
              r.encoder_s * double(batch.pixel_values.size(1)));

  // Prompt prefill: one forward over the prompt into a fresh KV cache, logits of the last position only.
  // Then greedy single-token decode steps against the cache of the prompt (context grows each round).
  const auto& lm = model.text_model();
  const at::Tensor prompt = at::randint(3, cfg.text.vocab_size, {1, prompt_tokens}, at::kLong);
  auto prefill_and_decode = [&](const char* label, double streamed_bytes) {
    const double t_prefill = best_time(2, [&] {
      models::KVCache cache;
      lm.forward(prompt, {}, {}, &cache, nullptr, true);
    });
    std::printf("%s prefill %d tokens       %8.2f s   %.1f tokens/s\n", label, prompt_tokens, t_prefill,
                prompt_tokens / t_prefill);
    models::KVCache cache;
    cache.reserve(prompt_tokens + 4 + 2 * decode_tokens);
    at::Tensor next = lm.forward(prompt, {}, {}, &cache, nullptr, true).argmax(-1);
    auto decode = [&](int n) {
      for (int i = 0; i < n; ++i) next = lm.forward(next, {}, {}, &cache, nullptr, true).argmax(-1);
    };
    decode(4);  // warm-up
    double t_decode = 1e30;
    for (int round = 0; round < 2; ++round) {
      auto t0 = Clock::now();
      decode(decode_tokens);
      t_decode = std::min(t_decode, seconds_since(t0));
    }
    const double tps = decode_tokens / t_decode;
    std::printf("%s decode %d tokens (KV cache) %6.2f s   %.2f tokens/s  %.1f ms/token  weights streamed %.1f GB/s\n",
                label, decode_tokens, t_decode, tps, 1e3 / tps, streamed_bytes * tps / 1e9);
    return tps;
  };
  if (!int8_load) r.decode_tps = prefill_and_decode("fp32", r.weight_bytes);

  // The int8 weight format (--int8): linear layers as int8 + one fp32 scale per row; the norms stay fp32.
  if (!int8_load) model.text_model().quantize_int8();
  const double norm_params = double(cfg.text.num_hidden_layers * 2 + 1) * double(cfg.text.hidden_size);
  const double linear_params = lm_params - norm_params;
  const double rows = lm_params / double(cfg.text.hidden_size);  // scales: about one per output row
  r.int8_weight_bytes = linear_params + norm_params * 4 + rows * 4;
  r.int8_decode_tps = prefill_and_decode("int8", r.int8_weight_bytes);
  if (!int8_load)
    std::printf("int8 decode speed-up          %.2fx (%.2f GB streamed per token instead of %.2f)\n",
                r.int8_decode_tps / r.decode_tps, r.int8_weight_bytes / 1e9, r.weight_bytes / 1e9);
  std::printf("peak RSS so far              %8.2f GiB\n", peak_rss_gib());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  int threads = 0, prompt_tokens = 300, decode_tokens = 32;
  std::string only;
  bool int8_load = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!std::strcmp(argv[i], "--prompt") && i + 1 < argc)
      prompt_tokens = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--decode") && i + 1 < argc)
      decode_tokens = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--int8-load"))
      int8_load = true;
    else {
      std::fprintf(stderr, "usage: bench_vlm [--threads N] [--only 256m|2b] [--prompt N] [--decode N] [--int8-load]\n");
      return 2;
    }
  }
  set_threads(threads);
  std::printf("threads %d (%s)\n", at::get_num_threads(), blas_threading().c_str());
  std::vector<ModelResult> results;
  if (only.empty() || only == "256m")
    results.push_back(bench_model("SmolVLM-256M", smolvlm_256m_config(), 512, prompt_tokens, decode_tokens, int8_load));
  if (only.empty() || only == "2b")
    results.push_back(bench_model("SmolVLM-2B", smolvlm_2b_config(), 384, prompt_tokens, decode_tokens, int8_load));

  std::printf("\n== machine (same run) ==\n");
  const double gemm = gemm_gflops();
  std::printf("fp32 GEMM (2048^3, best of 5)        %.1f GFLOP/s\n", gemm);
  const Bandwidth bw = memory_bandwidth();
  std::printf("memory read (sum over 1 GiB, best of 5)  %.1f GB/s   copy 1 GiB (read+write)  %.1f GB/s\n", bw.read_gbs,
              bw.copy_gbs);
  std::printf("\n== efficiency (targets >= 0.7) ==\n");
  for (const auto& r : results) {
    const double dec = r.weight_bytes * r.decode_tps / (bw.read_gbs * 1e9);
    const double enc = r.encoder_flops / r.encoder_s / (gemm * 1e9);
    const double int8_use = r.int8_weight_bytes * r.int8_decode_tps / (bw.read_gbs * 1e9);
    if (int8_load) {  // no fp32 decode ran
      std::printf("%-14s encode efficiency %.2f %s   int8 weights: bandwidth use %.2f\n", r.name.c_str(), enc,
                  enc >= 0.7 ? "(met)" : "(MISSED)", int8_use);
      continue;
    }
    std::printf("%-14s decode efficiency %.2f %s   encode efficiency %.2f %s\n", r.name.c_str(), dec,
                dec >= 0.7 ? "(met)" : "(MISSED)", enc, enc >= 0.7 ? "(met)" : "(MISSED)");
    std::printf("%-14s int8 weights: %.2fx the fp32 tokens/s, bandwidth use %.2f\n", "",
                r.int8_decode_tps / r.decode_tps, int8_use);
  }
  return 0;
}
