// The int8 weight format of nn/int8_linear.hpp: quantization error bound, the fused single-row kernel and
// the multi-row path against the dequantized fp32 product, nn::Linear and a Llama model switched to it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "models/kv_cache.hpp"
#include "models/llama.hpp"
#include "nn/decode_kernels.hpp"
#include "nn/flash_attention.hpp"
#include "nn/int8_linear.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::nn {
namespace {

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return (got - want).abs().max().item<double>() / std::max(1e-12, want.abs().max().item<double>());
}

TEST(Int8Linear, QuantizationErrorIsAtMostHalfAStepPerRow) {
  c10::InferenceMode guard;
  at::Tensor w = at::randn({37, 129});
  w[5].zero_();  // an all-zero row must survive (scale 1, values 0)
  const Int8Matrix q = quantize_rows(w);
  EXPECT_EQ(q.values.scalar_type(), at::kChar);
  EXPECT_LE(q.values.abs().max().item<int>(), 127);
  const at::Tensor step = q.scales.unsqueeze(1);
  EXPECT_TRUE(((dequantize(q) - w).abs() <= step * 0.5 + 1e-7).all().item<bool>());
  EXPECT_TRUE(at::equal(dequantize(q)[5], at::zeros({129})));
  // The row maximum maps to +-127 exactly.
  EXPECT_EQ(q.values.abs().amax(1)[0].item<int>(), 127);
}

TEST(Int8Linear, OneRowKernelAndManyRowsMatchTheDequantizedProduct) {
  c10::InferenceMode guard;
  for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{576, 576}, {100, 41}, {3, 7}, {1536, 576}}) {
    const at::Tensor w = at::randn({N, K}), b = at::randn({N});
    const Int8Matrix q = quantize_rows(w);
    const at::Tensor wd = dequantize(q);
    const at::Tensor one = at::randn({1, 1, K}), many = at::randn({2, 5, K});
    // On an AVX2 CPU the one-row product must take the fused kernel, not the dequantizing fallback.
    if (flash_attention::available()) {
      EXPECT_TRUE(decode_kernels::matvec_int8(q.values, q.scales, one, b).defined());
    }
    EXPECT_LT(relative_error(linear_int8(one, q, b), at::linear(one, wd, b)), 1e-5) << N << "x" << K;
    EXPECT_LT(relative_error(linear_int8(one, q, {}), at::linear(one, wd)), 1e-5);
    EXPECT_LT(relative_error(linear_int8(many, q, b), at::linear(many, wd, b)), 1e-5);
    EXPECT_LT(relative_error(linear_int8(many, q, {}), at::linear(many, wd)), 1e-5);
    // Rows with a stride (a slice of a wider tensor), as the blocked product reads them.
    const at::Tensor wide = at::randn({7, 2 * K});
    EXPECT_LT(relative_error(linear_int8(wide.narrow(1, K, K), q, b), at::linear(wide.narrow(1, K, K), wd, b)), 1e-5);
    // And the format itself stays close to the fp32 layer (per-row steps of max|w| / 127).
    EXPECT_LT(relative_error(linear_int8(one, q, b), at::linear(one, w, b)), 0.02);
  }
}

TEST(Int8Linear, SameBitsOnOneAndTwoThreads) {
  c10::InferenceMode guard;
  const int saved = at::get_num_threads();
  const Int8Matrix q = quantize_rows(at::randn({1000, 300}));
  const at::Tensor x = at::randn({1, 300}), rows = at::randn({37, 300});
  at::set_num_threads(1);
  const at::Tensor a = linear_int8(x, q), many = linear_int8(rows, q);
  at::set_num_threads(2);
  EXPECT_TRUE(at::equal(a, linear_int8(x, q)));
  EXPECT_TRUE(at::equal(many, linear_int8(rows, q)));  // the blocked several-row product
  at::set_num_threads(saved);
}

TEST(Int8Linear, LinearLayerReleasesItsFp32Weight) {
  c10::InferenceMode guard;
  Linear l;
  l.weight = at::randn({64, 32}), l.bias = at::randn({64});
  const at::Tensor x = at::randn({3, 32}), want = l(x);
  l.quantize_int8();
  EXPECT_FALSE(l.weight.defined());
  EXPECT_TRUE(l.int8.defined());
  EXPECT_LT(relative_error(l(x), want), 0.02);
  l.quantize_int8();  // a second call keeps the int8 form
  EXPECT_TRUE(l.int8.defined());
}

TEST(Int8Linear, QuantizedLlamaStaysCloseToFp32AndDecodesThroughTheCache) {
  c10::InferenceMode guard;
  models::LlamaConfig cfg;
  cfg.vocab_size = 300, cfg.hidden_size = 64, cfg.intermediate_size = 128, cfg.num_hidden_layers = 2;
  cfg.num_attention_heads = 4, cfg.num_key_value_heads = 2, cfg.head_dim = 16, cfg.tie_word_embeddings = true;
  RandomParams params(7);
  models::LlamaModel model(cfg, params);
  const at::Tensor ids = at::randint(3, 300, {1, 9}, at::kLong);
  const at::Tensor fp32 = model.forward(ids);
  EXPECT_FALSE(model.quantized_int8());
  model.quantize_int8();
  EXPECT_TRUE(model.quantized_int8());
  const at::Tensor int8 = model.forward(ids);
  EXPECT_LT(relative_error(int8, fp32), 0.05);
  // Token-by-token decoding (the one-row kernel) agrees with the full forward of the int8 model.
  models::KVCache cache;
  std::vector<at::Tensor> steps{model.forward(ids.narrow(1, 0, 5), {}, {}, &cache)};
  for (int64_t t = 5; t < 9; ++t) steps.push_back(model.forward(ids.narrow(1, t, 1), {}, {}, &cache));
  EXPECT_LT(relative_error(at::cat(steps, 1), int8), 1e-4);
}

TEST(Int8Linear, LlamaBuiltInt8LayerByLayerEqualsQuantizingAfterwards) {
  c10::InferenceMode guard;
  for (const bool tied : {false, true}) {
    models::LlamaConfig cfg;
    cfg.vocab_size = 300, cfg.hidden_size = 64, cfg.intermediate_size = 128, cfg.num_hidden_layers = 3;
    cfg.num_attention_heads = 4, cfg.num_key_value_heads = 2, cfg.head_dim = 16, cfg.tie_word_embeddings = tied;
    RandomParams a(11), b(11);
    models::LlamaModel after(cfg, a);
    const int64_t saved_after = after.quantize_int8();
    EXPECT_EQ(after.quantize_int8(), 0);  // already int8
    cfg.int8_weights = true;
    const models::LlamaModel built(cfg, b);
    EXPECT_TRUE(built.quantized_int8());
    EXPECT_EQ(built.int8_saved_bytes(), saved_after);
    EXPECT_EQ(after.int8_saved_bytes(), saved_after);
    // 3 layers of 4 products: qkv 128x64, o 64x64, gate/up 256x64, down 64x128 -> 3 bytes per weight minus
    // 4 per row; the lm_head 300x64 saves as much untied and costs its int8 copy tied.
    const int64_t layer = 3 * (128 * 64 + 64 * 64 + 256 * 64 + 64 * 128) - 4 * (128 + 64 + 256 + 64);
    const int64_t head = tied ? -(300 * 64 + 4 * 300) : 3 * 300 * 64 - 4 * 300;
    EXPECT_EQ(saved_after, 3 * layer + head);
    const at::Tensor ids = at::randint(3, 300, {1, 7}, at::kLong);
    EXPECT_TRUE(at::equal(built.forward(ids), after.forward(ids)));
  }
}

}  // namespace
}  // namespace pictor::nn
