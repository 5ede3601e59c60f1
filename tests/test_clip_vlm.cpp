// CLIP vision tower, CLIPModel + CLIPScore, the CLIP image processor and LLaVA: golden conformance,
// processor arithmetic on generated images, the `pictor score` command and config validation.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "formats/image.hpp"
#include "models/clip_image_processor.hpp"
#include "models/clip_model.hpp"
#include "models/clip_vision.hpp"
#include "models/llava.hpp"
#include "support.hpp"

using namespace pictor;
using models::ClipImageProcessor;
using models::ClipImageProcessorConfig;
namespace fs = std::filesystem;

namespace {

using test::error_of;

Image solid(int w, int h, int c, uint8_t r, uint8_t g, uint8_t b) {
  Image img(w, h, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = r;
      p[1] = g;
      p[2] = b;
      if (c == 4) p[3] = 7;
    }
  return img;
}

json clip_config_json() {
  return json{{"architectures", {"CLIPModel"}},
              {"model_type", "clip"},
              {"projection_dim", 8},
              {"text_config",
               {{"hidden_size", 16},
                {"intermediate_size", 32},
                {"num_attention_heads", 2},
                {"num_hidden_layers", 1},
                {"max_position_embeddings", 8},
                {"vocab_size", 20},
                {"eos_token_id", 19}}},
              {"vision_config",
               {{"hidden_size", 16},
                {"intermediate_size", 32},
                {"num_attention_heads", 2},
                {"num_hidden_layers", 2},
                {"image_size", 16},
                {"patch_size", 4}}}};
}

json llava_config_json() {
  json vision = clip_config_json()["vision_config"];
  vision["model_type"] = "clip_vision_model";
  return json{{"model_type", "llava"},
              {"image_token_index", 30},
              {"vision_feature_layer", -2},
              {"vision_feature_select_strategy", "default"},
              {"projector_hidden_act", "gelu"},
              {"vision_config", vision},
              {"text_config",
               {{"model_type", "llama"},
                {"vocab_size", 32},
                {"hidden_size", 16},
                {"intermediate_size", 24},
                {"num_hidden_layers", 1},
                {"num_attention_heads", 2},
                {"num_key_value_heads", 1}}}};
}

}  // namespace

TEST(ClipGolden, ClipModelCase) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  const auto rep = dev::run_conform(test::golden_dir() / "vlm/clip", &kind);
  EXPECT_EQ(kind, "clip");
  EXPECT_TRUE(rep.all_pass()) << rep.format();
  // The processor, tokenizer and CLIPScore are part of the check, not only the model tensors.
  bool saw_processor = false, saw_score = false;
  for (const auto& r : rep.results()) {
    saw_processor = saw_processor || r.name == "processor.pixel_values";
    saw_score = saw_score || r.name == "clipscore";
  }
  EXPECT_TRUE(saw_processor && saw_score) << rep.format();
}

TEST(ClipGolden, LlavaCase) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  const auto rep = dev::run_conform(test::golden_dir() / "vlm/llava", &kind);
  EXPECT_EQ(kind, "llava");
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

TEST(ClipImageProcessorTest, ShortestEdgeTruncatesTheLongSide) {
  EXPECT_EQ((models::shortest_edge_size(120, 200, 32)), (std::array<int64_t, 2>{32, 53}));
  EXPECT_EQ((models::shortest_edge_size(301, 37, 32)), (std::array<int64_t, 2>{260, 32}));
  EXPECT_EQ((models::shortest_edge_size(224, 224, 224)), (std::array<int64_t, 2>{224, 224}));
}

TEST(ClipImageProcessorTest, SolidImageGivesTheNormalisedColour) {
  ClipImageProcessorConfig cfg;
  cfg.shortest_edge = 32;
  cfg.crop_height = cfg.crop_width = 32;
  const ClipImageProcessor proc(cfg);
  // RGBA: the alpha channel is dropped, not composited.
  const at::Tensor px = proc.preprocess(solid(200, 120, 4, 200, 100, 50));
  ASSERT_EQ(px.sizes(), (at::IntArrayRef{1, 3, 32, 32}));
  ASSERT_EQ(px.scalar_type(), at::kFloat);
  const float rgb[3] = {200, 100, 50};
  for (int c = 0; c < 3; ++c) {
    const float expected = (float(double(rgb[c]) / 255.0) - cfg.image_mean[size_t(c)]) / cfg.image_std[size_t(c)];
    EXPECT_NEAR(px[0][c].min().item<float>(), expected, 1e-6);
    EXPECT_NEAR(px[0][c].max().item<float>(), expected, 1e-6);
  }
}

TEST(ClipImageProcessorTest, CenterCropTakesTheMiddleAndPadsSmallImages) {
  ClipImageProcessorConfig cfg;
  cfg.do_resize = false;
  cfg.crop_height = 4;
  cfg.crop_width = 4;
  cfg.do_normalize = false;
  // A horizontal ramp 0..9: the crop keeps columns (10 - 4) // 2 = 3 .. 6.
  Image ramp(10, 6, 3);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 10; ++x)
      for (int c = 0; c < 3; ++c) ramp.at(x, y)[c] = uint8_t(x);
  const Image crop = ClipImageProcessor(cfg).resize_and_crop(ramp);
  ASSERT_EQ(crop.width, 4);
  ASSERT_EQ(crop.height, 4);
  EXPECT_EQ(crop.at(0, 0)[0], 3);
  EXPECT_EQ(crop.at(3, 3)[0], 6);
  // A 2x2 image in a 4x4 crop sits at offset ceil((4 - 2) / 2) = 1, surrounded by zeros.
  cfg.crop_height = cfg.crop_width = 4;
  const Image padded = ClipImageProcessor(cfg).resize_and_crop(solid(2, 2, 3, 9, 9, 9));
  EXPECT_EQ(padded.at(0, 0)[0], 0);
  EXPECT_EQ(padded.at(1, 1)[0], 9);
  EXPECT_EQ(padded.at(2, 2)[0], 9);
  EXPECT_EQ(padded.at(3, 3)[0], 0);
}

TEST(ClipImageProcessorTest, ConfigErrorsNameTheField) {
  json j = {{"image_processor_type", "CLIPImageProcessor"}, {"resample", 0}, {"size", {{"shortest_edge", 32}}}};
  EXPECT_NE(error_of<Unsupported>([&] {
              ClipImageProcessorConfig::from_json(JsonConfig(j, "p.json"));
            }).find("p.json: field 'resample'"),
            std::string::npos);
  j["resample"] = 3;
  j["image_std"] = {0.5, 0.5};
  EXPECT_NE(error_of<Error>([&] { ClipImageProcessorConfig::from_json(JsonConfig(j, "p.json")); }).find("image_std"),
            std::string::npos);
  j.erase("image_std");
  j["size"] = {{"width", 3}};
  EXPECT_NE(error_of<Error>([&] {
              ClipImageProcessorConfig::from_json(JsonConfig(j, "p.json"));
            }).find("field 'size': needs shortest_edge"),
            std::string::npos);
  j["size"] = 48;  // legacy int: the shortest edge
  EXPECT_EQ(ClipImageProcessorConfig::from_json(JsonConfig(j, "p.json")).shortest_edge, 48);
}

TEST(ClipModelTest, EmbeddingsAreUnitVectorsAndScoresClamp) {
  nn::RandomParams params(3);
  const auto cfg = models::ClipModelConfig::from_json(JsonConfig(clip_config_json(), "clip/config.json"));
  EXPECT_EQ(cfg.text.hidden_act, "quick_gelu");  // transformers' default for an absent field
  models::ClipModel model(cfg, params);
  at::InferenceMode guard;
  // Row 1 is padded after its end-of-text (19), as CLIPProcessor(padding=True).
  const at::Tensor ids = at::tensor({1, 5, 7, 19, 1, 3, 19, 19}, at::kLong).view({2, 4});
  const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 1, 1, 0}, at::kLong).view({2, 4});
  const at::Tensor pixels = at::randn({3, 3, 16, 16});
  const auto out = model.forward(ids, mask, pixels);
  ASSERT_EQ(out.image_embeds.sizes(), (at::IntArrayRef{3, 8}));
  EXPECT_TRUE(at::allclose(out.text_embeds.norm(2, {1}), at::ones({2}), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(out.logits_per_image, out.logits_per_text.t()));
  const at::Tensor score = models::clip_score(out.image_embeds, out.text_embeds);
  const at::Tensor cos = models::clip_cosine(out.image_embeds, out.text_embeds);
  EXPECT_TRUE(at::allclose(score, 2.5 * cos.clamp_min(0)));
  EXPECT_GE(score.min().item<float>(), 0.0f);
  EXPECT_LE(score.max().item<float>(), 2.5f);
  // The padding mask matters for padded positions only: the pooled (EOS) output is unchanged, the
  // state at the padded position is not.
  const auto unmasked = model.text_model().forward(ids, false);
  EXPECT_TRUE(at::allclose(unmasked.pooler_output, out.text.pooler_output, 1e-5, 1e-5));
  EXPECT_TRUE(
      at::allclose(unmasked.last_hidden_state.narrow(1, 0, 3), out.text.last_hidden_state.narrow(1, 0, 3), 1e-5, 1e-5));
  EXPECT_FALSE(at::allclose(unmasked.last_hidden_state[1][3], out.text.last_hidden_state[1][3], 1e-4, 1e-4));
  EXPECT_THROW(model.image_embeds(at::randn({1, 3, 8, 8})), Error);
}

TEST(ClipModelTest, ConfigErrorsNameTheNestedField) {
  json j = clip_config_json();
  j["vision_config"]["patch_size"] = 5;
  const std::string e = error_of<Error>([&] { models::ClipModelConfig::from_json(JsonConfig(j, "c.json")); });
  EXPECT_NE(e.find("c.json (vision_config): field 'patch_size'"), std::string::npos) << e;
  j = clip_config_json();
  j["text_config"]["hidden_act"] = "tanh";
  EXPECT_NE(error_of<Unsupported>([&] {
              models::ClipModelConfig::from_json(JsonConfig(j, "c.json"));
            }).find("(text_config): field 'hidden_act'"),
            std::string::npos);
  j = clip_config_json();
  j["architectures"] = {"SiglipModel"};
  EXPECT_THROW(models::ClipModelConfig::from_json(JsonConfig(j, "c.json")), Unsupported);
  j = clip_config_json();
  j.erase("vision_config");
  EXPECT_NE(error_of<Error>([&] {
              models::ClipModelConfig::from_json(JsonConfig(j, "c.json"));
            }).find("missing object 'vision_config'"),
            std::string::npos);
  // A flat CLIPTextModel config still requires its sizes.
  json flat = clip_config_json()["text_config"];
  flat.erase("vocab_size");
  EXPECT_NE(error_of<Error>([&] {
              models::ClipTextConfig::from_json(JsonConfig(flat, "t.json"));
            }).find("missing field 'vocab_size'"),
            std::string::npos);
  // ... while a nested one falls back to CLIPTextConfig's defaults, as transformers' CLIPConfig.
  j = clip_config_json();
  j["text_config"].erase("vocab_size");
  EXPECT_EQ(models::ClipModelConfig::from_json(JsonConfig(j, "c.json")).text.vocab_size, 49408);
}

TEST(LlavaTest, ConfigValidation) {
  auto load = [](const json& j) { return models::LlavaConfig::from_json(JsonConfig(j, "llava/config.json")); };
  const auto cfg = load(llava_config_json());
  EXPECT_EQ(cfg.image_tokens_per_image(), 16);
  json j = llava_config_json();
  j["vision_feature_select_strategy"] = "full";
  EXPECT_EQ(load(j).image_tokens_per_image(), 17);
  j["vision_feature_select_strategy"] = "pooled";
  EXPECT_NE(error_of<Unsupported>([&] { load(j); }).find("vision_feature_select_strategy"), std::string::npos);
  j = llava_config_json();
  j["vision_feature_layer"] = {-2, -5};
  EXPECT_NE(error_of<Unsupported>([&] { load(j); }).find("vision_feature_layer"), std::string::npos);
  j = llava_config_json();
  j["vision_feature_layer"] = -4;
  EXPECT_NE(error_of<Error>([&] { load(j); }).find("vision_feature_layer"), std::string::npos);
  j = llava_config_json();
  j["vision_config"]["model_type"] = "siglip_vision_model";
  EXPECT_THROW(load(j), Unsupported);
}

TEST(LlavaTest, ImageTokensMustMatchTheFeatures) {
  nn::RandomParams params(5);
  const auto cfg = models::LlavaConfig::from_json(JsonConfig(llava_config_json(), "llava/config.json"));
  models::LlavaModel model(cfg, params);
  at::InferenceMode guard;
  const at::Tensor pixels = at::randn({1, 3, 16, 16});
  std::vector<int64_t> prompt{1, 4, 5};
  for (int i = 0; i < 16; ++i) prompt.push_back(30);
  prompt.push_back(6);
  const at::Tensor ids = at::tensor(prompt, at::kLong).view({1, -1});
  const at::Tensor embeds = model.embed(ids, pixels);
  // The image rows are exactly the projected features; text rows are token embeddings.
  EXPECT_TRUE(at::allclose(embeds.narrow(1, 3, 16), model.image_features(pixels)));
  EXPECT_TRUE(at::allclose(embeds.narrow(1, 0, 3), model.language_model().embed(ids.narrow(1, 0, 3))));
  // A single unexpanded <image> is refused with the count to expand to.
  const at::Tensor short_ids = at::tensor({1, 30, 6}, at::kLong).view({1, 3});
  EXPECT_NE(error_of<Error>([&] { model.embed(short_ids, pixels); }).find("expand each <image> to 16"),
            std::string::npos);
  // Greedy generation through the step function equals re-running the full forward each step.
  models::GenerationConfig g;
  g.max_new_tokens = 3;
  const auto res = model.generate(ids, pixels, {}, g);
  ASSERT_EQ(res.sequences.size(1), ids.size(1) + 3);
  at::Tensor seq = ids;
  for (int s = 0; s < 3; ++s) {
    const at::Tensor next = model.forward(seq, pixels).select(1, seq.size(1) - 1).argmax(-1, true);
    seq = at::cat({seq, next}, 1);
  }
  EXPECT_TRUE(at::equal(seq, res.sequences));
}

TEST(LlavaTest, ExpandImageTokens) {
  EXPECT_EQ(models::expand_image_tokens("USER: <image>\nHi <image>", "<image>", 2),
            "USER: <image><image>\nHi <image><image>");
  EXPECT_EQ(models::expand_image_tokens("no image", "<image>", 5), "no image");
}

TEST(ScoreCli, ScoresGoldenCaptions) {
  PICTOR_REQUIRE_GOLDEN();
  const fs::path dir = test::golden_dir() / "vlm/clip";
  std::string out;
  const int rc = test::run_cli("score " + (dir / "image_b_37x301.png").string() +
                                   " 'a red square and a yellow circle on a gradient' "
                                   "'a dog runs across the green grass in the park' --model " +
                                   dir.string(),
                               &out);
  ASSERT_EQ(rc, 0) << out;
  // clipscore_values[1][0] and [1][2] of case.json.
  float a = 0, b = 0;
  char line[256];
  ASSERT_EQ(std::sscanf(out.c_str(), "%f\t%255[^\n]\n%f", &a, line, &b), 3) << out;
  EXPECT_NEAR(a, 0.674597, 2e-4) << out;
  EXPECT_NEAR(b, 0.795908, 2e-4) << out;

  EXPECT_NE(test::run_cli("score " + (dir / "image_b_37x301.png").string() + " text --model /nonexistent/clip", &out),
            0);
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
}
