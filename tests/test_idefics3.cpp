// SigLIP vision tower and Idefics3 / SmolVLM: golden conformance (processor, vision, connector, logits,
// generation), the image processor on awkward image sizes and alpha, prompt expansion, padding frames,
// and clear errors for bad configs and inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "models/idefics3.hpp"
#include "models/idefics3_processor.hpp"
#include "models/siglip_vision.hpp"
#include "support.hpp"

using namespace pictor;
using models::Idefics3Config;
using models::Idefics3Processor;
using models::Idefics3ProcessorConfig;

namespace {

using test::error_of;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void expect_golden_pass(const std::string& rel, const std::string& want_kind) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / rel, &kind);
  EXPECT_EQ(kind, want_kind);
  EXPECT_GE(rep.results().size(), 5u) << rep.format();
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

// The golden cases' processor settings: 128 longest edge, 64 x 64 frames, 16 tokens per frame.
Idefics3Processor small_processor() {
  Idefics3ProcessorConfig c;
  c.longest_edge = 128;
  c.max_image_size = 64;
  c.image_seq_len = 16;
  return Idefics3Processor(c);
}

Image gradient_image(int w, int h, int channels = 3) {
  Image im(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) im.at(x, y)[c] = uint8_t((x * 7 + y * 13 + c * 50) % 256);
  return im;
}

json tiny_idefics3_json() {
  return json{{"model_type", "idefics3"},
              {"scale_factor", 2},
              {"image_token_id", 60},
              {"vision_config",
               {{"hidden_size", 16},
                {"intermediate_size", 32},
                {"num_hidden_layers", 1},
                {"num_attention_heads", 2},
                {"image_size", 32},
                {"patch_size", 8}}},
              {"text_config",
               {{"model_type", "llama"},
                {"vocab_size", 64},
                {"hidden_size", 32},
                {"intermediate_size", 48},
                {"num_hidden_layers", 1},
                {"num_attention_heads", 4},
                {"num_key_value_heads", 2},
                {"eos_token_id", 2}}}};
}

Idefics3Config tiny_config(json j = tiny_idefics3_json()) {
  return Idefics3Config::from_json(JsonConfig(std::move(j), "tiny/config.json"));
}

}  // namespace

TEST(SiglipGolden, VisionModelWithPoolingHead) {
  expect_golden_pass("vlm/siglip_vision", "siglip_vision");
}

TEST(Idefics3Golden, TwoImagesSplit) {
  expect_golden_pass("vlm/idefics3_split", "idefics3");
}

TEST(Idefics3Golden, OneImageNoSplit) {
  expect_golden_pass("vlm/idefics3_nosplit", "idefics3");
}

TEST(Idefics3Golden, LeftPaddedBatchWithPaddingFrames) {
  expect_golden_pass("vlm/idefics3_batch", "idefics3");
}

TEST(Idefics3Processor, SizesFollowTransformers) {
  const Idefics3Processor p = small_processor();
  // 200x120 -> 128 x int(76.8) = 76; 37x301 -> int(15.73) = 15, rounded up to even 16.
  EXPECT_EQ(p.resized_size(200, 120), std::make_pair(128, 76));
  EXPECT_EQ(p.resized_size(37, 301), std::make_pair(16, 128));
  EXPECT_EQ(p.resized_size(3, 517), std::make_pair(1, 128));  // int(0.74) = 0 -> at least 1
  EXPECT_EQ(p.vision_encoder_size(128, 76), std::make_pair(128, 128));
  EXPECT_EQ(p.vision_encoder_size(16, 128), std::make_pair(64, 128));
  EXPECT_EQ(p.vision_encoder_size(1, 128), std::make_pair(64, 128));
}

TEST(Idefics3Processor, OddSizedImagesGiveTheRightFrames) {
  const Idefics3Processor p = small_processor();
  struct Case {
    int w, h;
    int64_t rows, cols;
  };
  // Tiny and extreme aspect ratios still end in whole 64x64 tiles plus the global view.
  for (const Case& c : {Case{1, 1, 2, 2}, Case{3, 517, 2, 1}, Case{777, 5, 1, 2}, Case{64, 64, 2, 2},
                        Case{65, 63, 2, 2}, Case{301, 37, 1, 2}}) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    const auto split = p.split_image(gradient_image(c.w, c.h));
    EXPECT_EQ(split.grid.rows, c.rows);
    EXPECT_EQ(split.grid.cols, c.cols);
    ASSERT_EQ(int64_t(split.frames.size()), c.rows * c.cols + 1);
    for (const Image& f : split.frames) {
      EXPECT_EQ(f.width, 64);
      EXPECT_EQ(f.height, 64);
    }
    const auto single = p.split_image(gradient_image(c.w, c.h), /*do_image_splitting=*/false);
    EXPECT_EQ(single.frames.size(), 1u);
    EXPECT_EQ(single.grid.num_frames(), 1);
  }
}

TEST(Idefics3Processor, BatchPadsFramesAndCountsTokens) {
  const Idefics3Processor p = small_processor();
  const auto batch = p.preprocess({{gradient_image(200, 120), gradient_image(9, 300)}, {gradient_image(5, 5)}});
  // Sample 0: 2x2 + 1 and 2x1 + 1 frames = 8; sample 1: 5 frames, padded to 8.
  ASSERT_EQ(batch.pixel_values.sizes(), (std::vector<int64_t>{2, 8, 3, 64, 64}));
  ASSERT_EQ(batch.pixel_attention_mask.sizes(), (std::vector<int64_t>{2, 8, 64, 64}));
  EXPECT_EQ(batch.pixel_attention_mask[0].sum().item<int64_t>(), 8 * 64 * 64);
  EXPECT_EQ(batch.pixel_attention_mask[1].sum().item<int64_t>(), 5 * 64 * 64);
  EXPECT_TRUE(batch.pixel_values[1].narrow(0, 5, 3).eq(0.0).all().item<bool>());
  EXPECT_LE(batch.pixel_values.abs().max().item<float>(), 1.0f);

  const std::string text = p.expand_prompt("A<image>B<image>C", batch.grids[0]);
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find("<image>", pos)) != std::string::npos; pos += 7) ++n;
  EXPECT_EQ(n, 8u * 16u);
  EXPECT_TRUE(contains(text, "<row_2_col_2>"));
  EXPECT_EQ(text.front(), 'A');
  EXPECT_EQ(text.back(), 'C');
  EXPECT_EQ(
      p.expand_prompt("x<image>", {models::Idefics3ImageGrid{}}), "x<fake_token_around_image><global-img>" +
                                                                      std::string() +
                                                                      [] {
                                                                        std::string s;
                                                                        for (int i = 0; i < 16; ++i) s += "<image>";
                                                                        return s;
                                                                      }() +
                                                                      "<fake_token_around_image>");
  EXPECT_TRUE(contains(error_of<Error>([&] { p.expand_prompt("<image><image>", batch.grids[1]); }), "marker"));
  EXPECT_TRUE(contains(error_of<Error>([&] { p.expand_prompt("no image", batch.grids[1]); }), "0 <image>"));
}

TEST(Idefics3Processor, TransparentPixelsBecomeWhite) {
  Image rgba(3, 1, 4);
  const uint8_t px[] = {10, 20, 30, 0, 200, 100, 50, 255, 0, 0, 0, 128};
  std::copy(std::begin(px), std::end(px), rgba.pixels.begin());
  const Image rgb = models::convert_to_rgb(rgba);
  ASSERT_EQ(rgb.channels, 3);
  EXPECT_EQ(rgb.at(0, 0)[0], 255);
  EXPECT_EQ(rgb.at(0, 0)[2], 255);
  EXPECT_EQ(rgb.at(1, 0)[0], 200);
  EXPECT_EQ(rgb.at(1, 0)[2], 50);
  // Half-transparent black over white: PIL's fixed point gives 127 (not the 128 of float rounding).
  EXPECT_EQ(rgb.at(2, 0)[0], 127);
  const auto frames = small_processor().split_image(rgba, false);
  EXPECT_EQ(frames.frames.at(0).channels, 3);
}

TEST(Idefics3Config, ErrorsNameFileAndField) {
  json j = tiny_idefics3_json();
  j.erase("vision_config");
  EXPECT_TRUE(contains(error_of<Error>([&] { tiny_config(j); }), "vision_config"));
  j = tiny_idefics3_json();
  j["scale_factor"] = 3;
  EXPECT_TRUE(contains(error_of<Error>([&] { tiny_config(j); }), "tiny/config.json: field 'scale_factor'"));
  j = tiny_idefics3_json();
  j["image_token_id"] = 64;
  EXPECT_TRUE(contains(error_of<Error>([&] { tiny_config(j); }), "image_token_id"));
  j = tiny_idefics3_json();
  j["vision_config"]["patch_size"] = 100000;  // larger than the image
  EXPECT_TRUE(
      contains(error_of<Error>([&] { tiny_config(j); }), "tiny/config.json (vision_config): field 'patch_size'"));
  j = tiny_idefics3_json();
  j["text_config"]["rope_scaling"] = {{"rope_type", "yarn"}};
  EXPECT_TRUE(contains(error_of<Unsupported>([&] { tiny_config(j); }), "text_config"));
  j = tiny_idefics3_json();
  j["model_type"] = "llava";
  EXPECT_TRUE(contains(error_of<Unsupported>([&] { tiny_config(j); }), "model_type"));

  const JsonConfig bad_resample(json{{"resample", 0}}, "pp/preprocessor_config.json");
  EXPECT_TRUE(contains(error_of<Unsupported>([&] { Idefics3ProcessorConfig::from_json(bad_resample); }),
                       "pp/preprocessor_config.json: field 'resample'"));
  const JsonConfig bad_size(json{{"size", {{"height", 3}}}}, "pp/preprocessor_config.json");
  EXPECT_TRUE(contains(error_of<Error>([&] { Idefics3ProcessorConfig::from_json(bad_size); }), "field 'size'"));
}

TEST(Idefics3Model, PaddingFramesAreDroppedAndTokensMustMatch) {
  nn::RandomParams params(7);
  const Idefics3Config cfg = tiny_config();
  ASSERT_EQ(cfg.image_seq_len(), 4);
  models::Idefics3Model model(cfg, params);
  at::InferenceMode guard;
  const at::Tensor frames = at::rand({1, 2, 3, 32, 32}) * 2 - 1;
  const at::Tensor padded = at::cat({frames, at::zeros({1, 1, 3, 32, 32})}, 1);
  const at::Tensor a = model.encode_images(frames);
  const at::Tensor b = model.encode_images(padded);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{2, 4, 32}));
  EXPECT_TRUE(at::allclose(a, b));

  // 8 image tokens for 2 frames; generation after prefill treats ids as plain tokens.
  std::vector<int64_t> id_list{1, 5};
  for (int i = 0; i < 8; ++i) id_list.push_back(60);
  id_list.push_back(7);
  const at::Tensor ids = at::tensor(id_list, at::kLong).unsqueeze(0);
  const at::Tensor logits = model.forward(ids, {}, padded);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 11, 64}));
  models::GenerationConfig g;
  g.max_new_tokens = 4;
  const auto out = model.generate(ids, {}, padded, {}, g, {}, true);
  EXPECT_EQ(out.sequences.size(1), 15);
  // The first step's logits are the prompt's last-position logits of the full forward.
  EXPECT_TRUE(at::allclose(out.step_logits.at(0), logits.select(1, 10), 1e-4, 1e-4));

  EXPECT_TRUE(contains(error_of<Error>([&] { model.forward(ids.narrow(1, 0, 6), {}, padded); }), "<image> tokens"));
  EXPECT_TRUE(contains(error_of<Error>([&] { model.encode_images(frames[0]); }), "pixel_values"));
}

TEST(SiglipVision, ConfigAndInputErrors) {
  const JsonConfig bad(json{{"hidden_size", 30}, {"num_attention_heads", 4}}, "s/config.json");
  EXPECT_TRUE(contains(error_of<Error>([&] { models::SiglipVisionConfig::from_json(bad); }),
                       "s/config.json: field 'num_attention_heads'"));
  const JsonConfig nested(json{{"vision_config", {{"hidden_size", 16}, {"num_attention_heads", 2}}}}, "s/config.json");
  EXPECT_EQ(models::SiglipVisionConfig::from_json(nested).hidden_size, 16);

  models::SiglipVisionConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.image_size = 32;
  c.patch_size = 8;
  nn::RandomParams params(3);
  models::SiglipVisionModel model(c, params);
  at::InferenceMode guard;
  const auto out = model.forward(at::rand({2, 3, 32, 32}), {}, true);
  EXPECT_EQ(out.pooler_output.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(out.hidden_states.size(), 2u);
  // The embeddings (and so every residual sum after them) are laid out [B, T, C], not as the transposed
  // convolution output: each LayerNorm would otherwise copy its input first.
  EXPECT_TRUE(out.hidden_states[0].is_contiguous());
  EXPECT_TRUE(out.hidden_states[1].is_contiguous());
  EXPECT_TRUE(contains(error_of<Error>([&] { model.forward(at::rand({1, 3, 40, 40})); }), "expects 32x32"));
  EXPECT_TRUE(contains(error_of<Error>([&] {
                         model.forward(at::rand({1, 3, 4, 32}), at::ones({1, 0, 4}, at::kBool));
                       }),
                       "smaller than patch_size"));
  // With a full patch mask the bucketized positions are the plain 0..N-1 of SigLIP.
  const at::Tensor x = at::rand({1, 3, 32, 32});
  EXPECT_TRUE(at::allclose(model.embed(x), model.embed(x, at::ones({1, 4, 4}, at::kBool))));
}

TEST(SiglipVision, PatchSizeNotDividingImageSizeFloorsTheGrid) {
  // SmolVLM-Instruct (2B): image_size 384, patch_size 14 -> 27 x 27 patches, the last 6 pixels unseen.
  const JsonConfig cfg(json{{"hidden_size", 16},
                            {"intermediate_size", 32},
                            {"num_hidden_layers", 1},
                            {"num_attention_heads", 2},
                            {"image_size", 30},
                            {"patch_size", 4}},
                       "s/config.json");
  const auto c = models::SiglipVisionConfig::from_json(cfg);
  EXPECT_EQ(c.patches_per_side(), 7);
  nn::RandomParams params(5);
  models::SiglipVisionModel model(c, params);
  at::InferenceMode guard;
  at::Tensor x = at::rand({1, 3, 30, 30});
  const auto a = model.forward(x);
  EXPECT_EQ(a.last_hidden_state.sizes(), (std::vector<int64_t>{1, 49, 16}));
  // Pixels past the last whole patch do not change anything.
  at::Tensor y = x.clone();
  y.slice(2, 28, 30).fill_(0.5);
  y.slice(3, 28, 30).fill_(-0.5);
  EXPECT_TRUE(at::allclose(a.last_hidden_state, model.forward(y).last_hidden_state));
  EXPECT_FALSE(at::allclose(a.last_hidden_state, model.forward(at::rand({1, 3, 30, 30})).last_hidden_state));
}
