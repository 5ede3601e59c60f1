// CLIP text encoder: golden conformance for the SD1 (quick_gelu) and SD2 (gelu) text encoders, config
// validation, the structural properties of the causal encoder on random weights, and checkpoint checks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "formats/tensor_store.hpp"
#include "models/clip_text.hpp"
#include "support.hpp"

using namespace pictor;
using models::ClipTextConfig;
using models::ClipTextModel;
namespace fs = std::filesystem;

namespace {

json tiny_config_json() {
  return json{{"architectures", {"CLIPTextModel"}},
              {"model_type", "clip_text_model"},
              {"vocab_size", 100},
              {"hidden_size", 16},
              {"intermediate_size", 40},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"max_position_embeddings", 12},
              {"hidden_act", "quick_gelu"},
              {"layer_norm_eps", 1e-5},
              {"eos_token_id", 2},
              {"projection_dim", 16}};
}

ClipTextConfig tiny_config(json j = tiny_config_json()) {
  return ClipTextConfig::from_json(JsonConfig(std::move(j), "tiny/config.json"));
}

using test::error_of;

// Writes a checkpoint folder (config.json + model.safetensors) from a recorded random model.
fs::path write_checkpoint(const json& cfg, std::vector<std::pair<std::string, at::Tensor>> tensors) {
  fs::path d = test::temp_dir("clip");
  std::ofstream(d / "config.json") << cfg.dump(2);
  save_tensors(d / "model.safetensors", tensors);
  return d;
}

void expect_golden_pass(const std::string& rel) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / rel, &kind);
  EXPECT_EQ(kind, "clip_text");
  EXPECT_EQ(rep.results().size(), 8u);
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

}  // namespace

TEST(ClipTextGolden, Sd1TextEncoder) {
  expect_golden_pass("sd/sd1/text_encoder");
}

TEST(ClipTextGolden, Sd2TextEncoder) {
  expect_golden_pass("sd/sd2/text_encoder");
}

TEST(ClipTextConfig, ReadsFieldsAndDefaults) {
  ClipTextConfig c = tiny_config();
  EXPECT_EQ(c.hidden_size, 16);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.activation, nn::Activation::QuickGELU);
  json j = tiny_config_json();
  j.erase("hidden_act");
  j.erase("eos_token_id");
  j["hidden_act"] = nullptr;
  c = tiny_config(j);
  EXPECT_EQ(c.hidden_act, "quick_gelu");  // transformers' CLIPTextConfig defaults
  EXPECT_EQ(c.eos_token_id, 49407);
  j["hidden_act"] = "gelu";
  EXPECT_EQ(tiny_config(j).activation, nn::Activation::GELU);
}

TEST(ClipTextConfig, MissingFieldNamesFileAndField) {
  json j = tiny_config_json();
  j.erase("hidden_size");
  std::string msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_NE(msg.find("tiny/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
}

TEST(ClipTextConfig, UnsupportedValuesNameFileAndField) {
  json j = tiny_config_json();
  j["hidden_act"] = "swiglu";
  std::string msg = error_of<Unsupported>([&] { tiny_config(j); });
  EXPECT_NE(msg.find("tiny/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
  EXPECT_NE(msg.find("swiglu"), std::string::npos) << msg;

  j = tiny_config_json();
  j["architectures"] = {"T5EncoderModel"};
  msg = error_of<Unsupported>([&] { tiny_config(j); });
  EXPECT_NE(msg.find("architectures"), std::string::npos) << msg;

  j = tiny_config_json();
  j["num_attention_heads"] = 3;  // 16 is not divisible by 3
  msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;

  j = tiny_config_json();
  j["num_hidden_layers"] = 0;
  msg = error_of<Error>([&] { tiny_config(j); });
  EXPECT_NE(msg.find("num_hidden_layers"), std::string::npos) << msg;
}

TEST(ClipTextModel, RandomModelShapesAndCausality) {
  ClipTextConfig cfg = tiny_config();
  nn::RandomParams params(7);
  ClipTextModel model(cfg, params);
  at::Tensor ids = at::randint(3, 90, {3, 10}, at::kLong);
  ids.index_put_({0, 6}, 99);  // the largest id is the legacy end-of-text position
  ids.index_put_({1, 2}, 99);
  ids.index_put_({2, 9}, 99);
  auto out = model.forward(ids, true);
  EXPECT_EQ(out.last_hidden_state.sizes(), (at::IntArrayRef{3, 10, 16}));
  EXPECT_EQ(out.pooler_output.sizes(), (at::IntArrayRef{3, 16}));
  ASSERT_EQ(out.hidden_states.size(), 3u);
  EXPECT_TRUE(at::isfinite(out.last_hidden_state).all().item<bool>());
  EXPECT_TRUE(at::isfinite(out.pooler_output).all().item<bool>());
  EXPECT_TRUE(at::equal(out.last_hidden_state, model.final_layer_norm(out.hidden_states[2])));
  EXPECT_TRUE(at::equal(out.pooler_output[0], out.last_hidden_state[0][6]));
  EXPECT_TRUE(at::equal(out.pooler_output[1], out.last_hidden_state[1][2]));
  EXPECT_TRUE(at::equal(out.pooler_output[2], out.last_hidden_state[2][9]));

  // Causal: changing token 7 leaves positions 0..6 unchanged and changes position 7.
  at::Tensor ids2 = ids.clone();
  ids2.index_put_({0, 7}, 50 + (ids[0][7].item<int64_t>() % 30));
  auto out2 = model.forward(ids2);
  EXPECT_TRUE(at::allclose(out2.last_hidden_state[0].narrow(0, 0, 7), out.last_hidden_state[0].narrow(0, 0, 7)));
  EXPECT_FALSE(at::allclose(out2.last_hidden_state[0][7], out.last_hidden_state[0][7]));
  EXPECT_TRUE(out2.hidden_states.empty());
}

TEST(ClipTextModel, PoolsAtFirstEosForNewConfigs) {
  json j = tiny_config_json();
  j["eos_token_id"] = 5;
  nn::RandomParams params(3);
  ClipTextModel model(tiny_config(j), params);
  at::Tensor ids = at::full({1, 8}, 9, at::kLong);
  ids.index_put_({0, 0}, 99);  // the largest id is not the end-of-text token here
  ids.index_put_({0, 3}, 5);
  ids.index_put_({0, 6}, 5);
  auto out = model.forward(ids);
  EXPECT_TRUE(at::equal(out.pooler_output[0], out.last_hidden_state[0][3]));
}

TEST(ClipTextModel, BadInputIdsAreRefused) {
  nn::RandomParams params(1);
  ClipTextModel model(tiny_config(), params);
  EXPECT_NE(error_of<Error>([&] {
              model.forward(at::zeros({1, 13}, at::kLong));
            }).find("max_position_embeddings"),
            std::string::npos);
  EXPECT_NE(error_of<Error>([&] {
              model.forward(at::full({1, 4}, 100, at::kLong));
            }).find("vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of<Error>([&] { model.forward(at::zeros({4}, at::kLong)); }).find("input_ids"), std::string::npos);
  EXPECT_NE(error_of<Error>([&] {
              model.forward(at::zeros({1, 4}, at::kFloat));
            }).find("input_ids"),
            std::string::npos);
}

TEST(ClipTextModel, CheckpointRoundTripAndShapeCheck) {
  json cfg = tiny_config_json();
  nn::RandomParams params(11, /*record=*/true);
  ClipTextModel ref(tiny_config(cfg), params);
  auto tensors = params.recorded();
  tensors.emplace_back("text_model.embeddings.position_ids", at::arange(12, at::kLong).view({1, 12}));

  // A saved random model loads back (position_ids buffer ignored) and computes the same outputs.
  fs::path good = write_checkpoint(cfg, tensors);
  auto loaded = ClipTextModel::load(good);
  at::Tensor ids = at::randint(0, 100, {2, 12}, at::kLong);
  EXPECT_TRUE(at::allclose(loaded->forward(ids).last_hidden_state, ref.forward(ids).last_hidden_state, 0, 0));

  // A tensor of the wrong shape is refused, naming the tensor and both shapes.
  auto bad = tensors;
  for (auto& [name, t] : bad)
    if (name == "text_model.encoder.layers.1.mlp.fc1.weight") t = at::zeros({40, 15});
  std::string msg = error_of<Error>([&] { ClipTextModel::load(write_checkpoint(cfg, bad)); });
  EXPECT_NE(msg.find("text_model.encoder.layers.1.mlp.fc1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[40, 15]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[40, 16]"), std::string::npos) << msg;

  // A missing tensor and an unexpected extra tensor are refused too.
  auto missing = tensors;
  missing.erase(missing.begin());
  msg = error_of<Error>([&] { ClipTextModel::load(write_checkpoint(cfg, missing)); });
  EXPECT_NE(msg.find(tensors.front().first), std::string::npos) << msg;
  auto extra = tensors;
  extra.emplace_back("text_model.encoder.layers.2.mlp.fc1.weight", at::zeros({40, 16}));
  msg = error_of<Unsupported>([&] { ClipTextModel::load(write_checkpoint(cfg, extra)); });
  EXPECT_NE(msg.find("layers.2.mlp.fc1.weight"), std::string::npos) << msg;
}
