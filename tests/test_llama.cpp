// Llama decoder and text generation: golden conformance (tied and untied lm_head), config validation,
// KV-cache decoding against full recomputation, left padding, and the generation controls (sampling
// determinism, temperature/top-k limits, logits processors, EOS/pad filling, streaming, stop strings).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "formats/tensor_store.hpp"
#include "models/kv_cache.hpp"
#include "models/llama.hpp"
#include "models/text_generation.hpp"
#include "support.hpp"

using namespace pictor;
using models::GenerationConfig;
using models::KVCache;
using models::LlamaConfig;
using models::LlamaModel;
namespace fs = std::filesystem;

namespace {

json tiny_config_json() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"vocab_size", 64},
              {"hidden_size", 32},
              {"intermediate_size", 48},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"rope_scaling", nullptr},
              {"max_position_embeddings", 128},
              {"tie_word_embeddings", false},
              {"hidden_act", "silu"},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"pad_token_id", 0}};
}

LlamaConfig tiny_config(json j = tiny_config_json()) {
  return LlamaConfig::from_json(JsonConfig(std::move(j), "tiny/config.json"));
}

using test::error_of;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct TinyModel {
  nn::RandomParams params;
  LlamaModel model;
  explicit TinyModel(uint64_t seed, json cfg = tiny_config_json(), bool record = false)
      : params(seed, record), model(tiny_config(std::move(cfg)), params) {}
};

models::GenerationResult run(const LlamaModel& model, const at::Tensor& ids, const at::Tensor& mask,
                             const GenerationConfig& g, const models::GenerationCallbacks& cb = {}) {
  KVCache cache;
  return models::generate(model.step_function(cache), ids, mask, g, cb);
}

GenerationConfig greedy(int64_t n) {
  GenerationConfig g;
  g.max_new_tokens = n;
  return g;
}

void expect_golden_pass(const std::string& rel) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / rel, &kind);
  EXPECT_EQ(kind, "llama");
  // logits, 3 hidden states, 2 single-row generations, step/full logits, 4 cache tensors, batch logits,
  // 2 batch generations
  EXPECT_EQ(rep.results().size(), 15u) << rep.format();
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

}  // namespace

TEST(LlamaGolden, TiedEmbeddings) {
  expect_golden_pass("vlm/llama_tied");
}

TEST(LlamaGolden, UntiedLmHead) {
  expect_golden_pass("vlm/llama_untied");
}

TEST(LlamaConfig, ReadsFieldsAndDerivesHeadDim) {
  LlamaConfig c = tiny_config();
  EXPECT_EQ(c.head_dim, 8);  // hidden 32 / 4 heads
  EXPECT_EQ(c.num_key_value_heads, 2);
  ASSERT_EQ(c.eos_token_ids.size(), 1u);
  EXPECT_EQ(c.eos_token_ids[0], 2);
  EXPECT_EQ(c.pad_token_id.value_or(-1), 0);

  json j = tiny_config_json();
  j["head_dim"] = 16;
  j.erase("num_key_value_heads");
  j["eos_token_id"] = {2, 7};
  j["rope_scaling"] = {{"rope_type", "default"}};
  c = tiny_config(j);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 4);  // defaults to num_attention_heads, as transformers
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
}

TEST(LlamaConfig, ReadsNestedTextConfig) {
  json outer{{"model_type", "idefics3"}, {"text_config", tiny_config_json()}};
  outer["text_config"]["vocab_size"] = 77;
  LlamaConfig c = LlamaConfig::from_json(JsonConfig(outer, "vlm/config.json"), "text_config");
  EXPECT_EQ(c.vocab_size, 77);
  outer["text_config"]["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  std::string msg =
      error_of<Unsupported>([&] { LlamaConfig::from_json(JsonConfig(outer, "vlm/config.json"), "text_config"); });
  EXPECT_TRUE(contains(msg, "vlm/config.json")) << msg;
  EXPECT_TRUE(contains(msg, "text_config")) << msg;
  EXPECT_TRUE(contains(msg, "rope_scaling")) << msg;
  msg = error_of<Error>([&] { LlamaConfig::from_json(JsonConfig(json{{"a", 1}}, "vlm/config.json"), "text_config"); });
  EXPECT_TRUE(contains(msg, "text_config")) << msg;
}

TEST(LlamaConfig, UnsupportedAndInvalidValuesNameTheField) {
  json j = tiny_config_json();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  std::string msg = error_of<Unsupported>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "tiny/config.json")) << msg;
  EXPECT_TRUE(contains(msg, "rope_scaling")) << msg;
  EXPECT_TRUE(contains(msg, "llama3")) << msg;

  j = tiny_config_json();
  j["num_key_value_heads"] = 3;
  msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "num_key_value_heads")) << msg;
  EXPECT_TRUE(contains(msg, "does not divide")) << msg;

  j = tiny_config_json();
  j["num_attention_heads"] = 5;  // 32 / 5 with no head_dim
  j["num_key_value_heads"] = 5;
  msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "num_attention_heads")) << msg;

  j = tiny_config_json();
  j["model_type"] = "mistral";
  msg = error_of<Unsupported>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "model_type")) << msg;

  j = tiny_config_json();
  j["hidden_act"] = "swiglu";
  msg = error_of<Unsupported>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "hidden_act")) << msg;

  j = tiny_config_json();
  j["hidden_size"] = "big";
  msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_TRUE(contains(msg, "hidden_size")) << msg;
}

TEST(LlamaModel, KvCacheDecodingEqualsFullRecompute) {
  TinyModel tiny(5);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(3, 64, {2, 14}, at::kLong);
  std::vector<at::Tensor> hidden;
  const at::Tensor full = tiny.model.forward(ids, {}, {}, nullptr, &hidden);
  EXPECT_EQ(full.sizes(), (at::IntArrayRef{2, 14, 64}));
  EXPECT_EQ(hidden.size(), 3u);

  // Prefill 5 tokens, then a chunk of 3, then one token at a time; a tiny chunk forces several regrowths.
  KVCache cache(/*chunk=*/2);
  std::vector<at::Tensor> parts{tiny.model.forward(ids.narrow(1, 0, 5), {}, {}, &cache)};
  parts.push_back(tiny.model.forward(ids.narrow(1, 5, 3), {}, {}, &cache));
  for (int64_t t = 8; t < 14; ++t) parts.push_back(tiny.model.forward(ids.narrow(1, t, 1), {}, {}, &cache));
  EXPECT_EQ(cache.length(), 14);
  EXPECT_EQ(cache.keys(1).sizes(), (at::IntArrayRef{2, 2, 14, 8}));
  EXPECT_TRUE(at::allclose(at::cat(parts, 1), full, 1e-5, 1e-5));

  // last_logits_only returns the final position only.
  EXPECT_TRUE(
      at::allclose(tiny.model.forward(ids, {}, {}, nullptr, nullptr, true).squeeze(1), full.select(1, 13), 1e-6, 1e-6));
}

TEST(KVCache, GrowsInChunksAndKeepsGradientsUnderAutograd) {
  KVCache cache(/*chunk=*/4);
  at::Tensor a = at::randn({1, 2, 3, 4}), b = at::randn({1, 2, 5, 4});
  auto [k1, v1] = cache.append(0, a, a * 2);
  auto [k2, v2] = cache.append(0, b, b * 2);
  EXPECT_EQ(cache.length(), 8);
  EXPECT_TRUE(at::equal(k2, at::cat({a, b}, 2)));
  EXPECT_TRUE(at::equal(v2, at::cat({a, b}, 2) * 2));
  EXPECT_TRUE(at::equal(k1, a));  // earlier views stay valid after the storage grew
  EXPECT_TRUE(contains(error_of<Error>([&] {
                         cache.append(0, at::randn({2, 2, 1, 4}), at::randn({2, 2, 1, 4}));
                       }),
                       "batch"));

  KVCache grad_cache;
  at::Tensor x = at::randn({1, 1, 2, 4}).requires_grad_(), y = at::randn({1, 1, 1, 4}).requires_grad_();
  grad_cache.append(0, x, x);
  auto [k, v] = grad_cache.append(0, y, y);
  (k.sum() + v.sum()).backward();
  EXPECT_TRUE(at::equal(x.grad(), at::full_like(x, 2)));
  EXPECT_TRUE(at::equal(y.grad(), at::full_like(y, 2)));
}

TEST(LlamaModel, LeftPaddingMatchesUnpaddedRow) {
  TinyModel tiny(9);
  at::InferenceMode guard;
  const at::Tensor row = at::randint(3, 64, {1, 6}, at::kLong);
  const at::Tensor alone = tiny.model.forward(row);
  // The same row left-padded by 3 with position ids counted from its first real token.
  at::Tensor ids = at::cat({at::zeros({1, 3}, at::kLong), row}, 1);
  at::Tensor mask = at::cat({at::zeros({1, 3}, at::kLong), at::ones({1, 6}, at::kLong)}, 1);
  at::Tensor pos = (mask.cumsum(-1) - 1).masked_fill(mask.eq(0), 1);
  const at::Tensor padded = tiny.model.forward(ids, mask, pos);
  EXPECT_TRUE(at::allclose(padded.narrow(1, 3, 6), alone, 1e-5, 1e-5));

  // Greedy generation of the padded row matches the unpadded one token for token.
  auto a = run(tiny.model, row, {}, greedy(8)).sequences;
  auto b = run(tiny.model, ids, mask, greedy(8)).sequences;
  EXPECT_TRUE(at::equal(a.narrow(1, 6, 8), b.narrow(1, 9, 8)));
}

TEST(LlamaModel, InputsEmbedsEqualIds) {
  TinyModel tiny(2);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(0, 64, {1, 7}, at::kLong);
  EXPECT_TRUE(at::equal(tiny.model.forward(tiny.model.embed(ids)), tiny.model.forward(ids)));
}

TEST(LlamaModel, BadInputsAreRefused) {
  TinyModel tiny(1);
  EXPECT_TRUE(contains(error_of<Error>([&] { tiny.model.forward(at::full({1, 3}, 64, at::kLong)); }), "vocabulary"));
  EXPECT_TRUE(contains(error_of<Error>([&] { tiny.model.forward(at::zeros({1, 3, 5})); }), "inputs_embeds"));
  EXPECT_TRUE(contains(error_of<Error>([&] {
                         tiny.model.forward(at::zeros({1, 3}, at::kLong), at::ones({1, 4}, at::kLong));
                       }),
                       "attention_mask"));
}

TEST(LlamaModel, CheckpointLoadsAndExtraTensorsAreRefused) {
  json cfg = tiny_config_json();
  cfg["tie_word_embeddings"] = true;
  TinyModel ref(4, cfg, /*record=*/true);
  const auto& tensors = ref.params.recorded();
  for (const auto& [name, t] : tensors) EXPECT_NE(name, "lm_head.weight");  // tied: not a parameter

  fs::path dir = test::temp_dir("llama");
  std::ofstream(dir / "config.json") << cfg.dump(2);
  save_tensors(dir / "model.safetensors", tensors);
  auto loaded = LlamaModel::load(dir);
  const at::Tensor ids = at::randint(0, 64, {1, 5}, at::kLong);
  EXPECT_TRUE(at::allclose(loaded->forward(ids), ref.model.forward(ids), 0, 0));

  auto extra = tensors;
  extra.emplace_back("model.layers.2.input_layernorm.weight", at::ones({32}));
  fs::path bad = test::temp_dir("llama");
  std::ofstream(bad / "config.json") << cfg.dump(2);
  save_tensors(bad / "model.safetensors", extra);
  std::string msg = error_of<Unsupported>([&] { LlamaModel::load(bad); });
  EXPECT_TRUE(contains(msg, "model.layers.2.input_layernorm.weight")) << msg;
}

TEST(TextGeneration, SamplingIsReproducibleAndLimitsEqualGreedy) {
  TinyModel tiny(3);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(3, 64, {2, 5}, at::kLong);
  const at::Tensor ref = run(tiny.model, ids, {}, greedy(12)).sequences;
  EXPECT_EQ(ref.sizes(), (at::IntArrayRef{2, 17}));

  GenerationConfig s = greedy(12);
  s.do_sample = true;
  s.top_k = 0;
  s.seed = 1234;
  const at::Tensor a = run(tiny.model, ids, {}, s).sequences, b = run(tiny.model, ids, {}, s).sequences;
  EXPECT_TRUE(at::equal(a, b));
  s.seed = 99;
  EXPECT_FALSE(at::equal(a, run(tiny.model, ids, {}, s).sequences));  // 24 draws from 64 tokens

  s.temperature = 0;  // greedy by definition
  EXPECT_TRUE(at::equal(run(tiny.model, ids, {}, s).sequences, ref));
  s.temperature = 1e-6;  // numerically one-hot
  EXPECT_TRUE(at::equal(run(tiny.model, ids, {}, s).sequences, ref));
  s.temperature = 1.0;
  s.top_k = 1;
  EXPECT_TRUE(at::equal(run(tiny.model, ids, {}, s).sequences, ref));
  s.top_k = 0;
  s.top_p = 1e-6;  // only the most likely token survives
  EXPECT_TRUE(at::equal(run(tiny.model, ids, {}, s).sequences, ref));
}

TEST(TextGeneration, LogitsProcessorsFollowTransformers) {
  GenerationConfig g;
  g.repetition_penalty = 2.0;
  const at::Tensor logits = at::tensor({2.0f, -2.0f, 1.0f, 0.5f}).view({1, 4});
  const at::Tensor seq = at::tensor({int64_t(0), int64_t(1), int64_t(1)}).view({1, 3});
  at::Tensor out = models::process_logits(logits, seq, g);
  EXPECT_TRUE(at::equal(out, at::tensor({1.0f, -4.0f, 1.0f, 0.5f}).view({1, 4})));

  // Sampling filters: top-k keeps ties, top-p keeps the smallest set above the mass.
  const float inf = std::numeric_limits<float>::infinity();
  g = GenerationConfig();
  g.do_sample = true;
  g.top_k = 2;
  out = models::process_logits(at::tensor({3.0f, 1.0f, 3.0f, 2.0f}).view({1, 4}), seq, g);
  EXPECT_TRUE(at::equal(out, at::tensor({3.0f, -inf, 3.0f, -inf}).view({1, 4})));
  g.top_k = 0;
  g.top_p = 0.8;
  const at::Tensor probs = at::tensor({0.5f, 0.3f, 0.15f, 0.05f}).log().view({1, 4});
  out = models::process_logits(probs, seq, g);
  EXPECT_TRUE(at::isfinite(out).equal(at::tensor({1, 1, 0, 0}).to(at::kBool).view({1, 4})));
  g.top_p = 1.0;
  g.temperature = 0.5;
  EXPECT_TRUE(at::allclose(models::process_logits(probs, seq, g), probs * 2));
}

TEST(TextGeneration, EosStopsRowsAndFillsPad) {
  TinyModel tiny(8);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(3, 64, {2, 4}, at::kLong);
  const at::Tensor ref = run(tiny.model, ids, {}, greedy(10)).sequences;
  // EOS = row 0's third new token: row 0 stops there (the token is kept), then gets pad 63.
  const int64_t eos = ref[0][6].item<int64_t>();
  int64_t first = 4;
  while (ref[0][first].item<int64_t>() != eos) ++first;
  GenerationConfig g = greedy(10);
  g.eos_token_ids = {eos};
  g.pad_token_id = 63;
  auto res = run(tiny.model, ids, {}, g);
  EXPECT_TRUE(res.finished[0]);
  for (int64_t t = 4; t < res.sequences.size(1); ++t) {
    const int64_t got = res.sequences[0][t].item<int64_t>();
    EXPECT_EQ(got, t <= first ? ref[0][t].item<int64_t>() : 63) << t;
  }
  // Generation ends when every row is done or at max_new_tokens; unfinished rows follow the greedy path.
  if (!res.finished[1]) {
    EXPECT_EQ(res.new_tokens, 10);
    EXPECT_TRUE(at::equal(res.sequences[1], ref[1]));
  }
}

TEST(TextGeneration, StreamingCallbackSeesEveryTokenAndCanStop) {
  TinyModel tiny(6);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(3, 64, {2, 4}, at::kLong);
  std::vector<std::vector<int64_t>> seen(2);
  models::GenerationCallbacks cb;
  cb.on_token = [&](int row, int64_t tok) {
    seen[static_cast<size_t>(row)].push_back(tok);
    return true;
  };
  auto res = run(tiny.model, ids, {}, greedy(7), cb);
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(seen[static_cast<size_t>(r)].size(), 7u);
    for (int64_t t = 0; t < 7; ++t) EXPECT_EQ(seen[static_cast<size_t>(r)][t], res.sequences[r][4 + t].item<int64_t>());
  }
  int calls = 0;
  cb.on_token = [&](int, int64_t) { return ++calls < 5; };  // false on the 5th token (row 0 of step 3)
  res = run(tiny.model, ids, {}, greedy(7), cb);
  EXPECT_TRUE(res.stopped_by_callback);
  EXPECT_EQ(res.new_tokens, 3);
  EXPECT_EQ(res.sequences.size(1), 7);
}

TEST(TextGeneration, StopStringsEndARow) {
  TinyModel tiny(12);
  at::InferenceMode guard;
  const at::Tensor ids = at::randint(3, 64, {1, 4}, at::kLong);
  const at::Tensor ref = run(tiny.model, ids, {}, greedy(10)).sequences;
  int64_t first = 6;  // the third new token, or its first occurrence
  const int64_t stop_tok = ref[0][6].item<int64_t>();
  for (int64_t t = 4; t < 6; ++t)
    if (ref[0][t].item<int64_t>() == stop_tok) {
      first = t;
      break;
    }
  models::GenerationCallbacks cb;
  cb.decode = [](int, const std::vector<int64_t>& toks) {
    std::string s;
    for (int64_t t : toks) s += "<" + std::to_string(t) + ">";
    return s;
  };
  GenerationConfig g = greedy(10);
  g.pad_token_id = 0;
  g.stop_strings = {"<" + std::to_string(stop_tok) + ">"};
  auto res = run(tiny.model, ids, {}, g, cb);
  EXPECT_TRUE(res.finished[0]);
  EXPECT_TRUE(at::equal(res.sequences, ref.narrow(1, 0, first + 1)));

  g.pad_token_id.reset();
  EXPECT_TRUE(contains(error_of<Error>([&] { run(tiny.model, ids, {}, g, cb); }), "pad_token_id"));
  EXPECT_TRUE(contains(error_of<Error>([&] { run(tiny.model, ids, {}, g); }), "decode"));
}

TEST(TextGeneration, ConfigFromJsonAndValidation) {
  json j{{"eos_token_id", {2, 5}}, {"pad_token_id", 0}, {"do_sample", true}, {"temperature", 0.7}, {"top_p", 0.9}};
  GenerationConfig g = GenerationConfig::from_json(JsonConfig(j, "m/generation_config.json"));
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(g.do_sample);
  EXPECT_DOUBLE_EQ(g.temperature, 0.7);
  EXPECT_EQ(g.top_k, 50);
  j["num_beams"] = 4;
  std::string msg =
      error_of<Unsupported>([&] { GenerationConfig::from_json(JsonConfig(j, "m/generation_config.json")); });
  EXPECT_TRUE(contains(msg, "num_beams")) << msg;
  j.erase("num_beams");
  j["top_p"] = 0.0;
  msg = error_of<Error>([&] { GenerationConfig::from_json(JsonConfig(j, "m/generation_config.json")); });
  EXPECT_TRUE(contains(msg, "generation_config.json")) << msg;
  EXPECT_TRUE(contains(msg, "top_p")) << msg;
}
