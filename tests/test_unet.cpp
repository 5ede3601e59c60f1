// UNet2DConditionModel: golden conformance for the SD1 and SD2 layouts, config variants (inpainting,
// reduced blocks), refusal of unsupported configs by field name, attention chunking invariance and
// differentiability.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "models/unet2d.hpp"
#include "nn/attention.hpp"
#include "nn/conv_prepack.hpp"
#include "support.hpp"

using namespace pictor;
using models::UNet2DConditionModel;
using models::UNetConfig;

namespace {

const char* kSource = "tiny/unet/config.json";

// Two resolution levels, attention only at the top, no mid block (a BK-SDM-style reduced UNet).
json tiny_config() {
  return {{"_class_name", "UNet2DConditionModel"},
          {"in_channels", 4},
          {"out_channels", 4},
          {"block_out_channels", {32, 64}},
          {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
          {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
          {"mid_block_type", nullptr},
          {"layers_per_block", 1},
          {"norm_num_groups", 8},
          {"cross_attention_dim", 16},
          {"attention_head_dim", 4}};
}

UNetConfig parse(const json& j) {
  return UNetConfig::from_json(JsonConfig(j, kSource));
}

std::string unsupported_message(const json& j) {
  try {
    parse(j);
  } catch (const Unsupported& e) {
    return e.what();
  }
  return "(no Unsupported thrown)";
}

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::normal(0.0, 1.0, shape, gen);
}

void expect_golden(const std::string& rel) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / rel, &kind);
  EXPECT_EQ(kind, "unet");
  EXPECT_EQ(rep.results().size(), 13u);
  EXPECT_TRUE(rep.all_pass()) << rep.format();
  std::printf("%s", rep.format().c_str());
}

}  // namespace

TEST(UNet, GoldenSd1) {
  expect_golden("sd/sd1/unet");
}

TEST(UNet, GoldenSd2) {
  expect_golden("sd/sd2/unet");
}

TEST(UNet, Sd2ConfigReadsAttentionHeadDimAsHeadCount) {
  PICTOR_REQUIRE_GOLDEN();
  auto c = UNetConfig::from_json(JsonConfig::load(test::golden_dir() / "sd/sd2/unet/config.json"));
  EXPECT_EQ(c.num_attention_heads, (std::vector<int64_t>{2, 4, 4, 4}));
  EXPECT_EQ(c.cross_attention_dim, (std::vector<int64_t>{48, 48, 48, 48}));
  EXPECT_TRUE(c.use_linear_projection);
  EXPECT_EQ(c.mid_block_type, "UNetMidBlock2DCrossAttn");
  EXPECT_EQ(c.time_embedding_dim, 128);
}

TEST(UNet, InpaintingNineChannelsRuns) {
  json j = tiny_config();
  j["in_channels"] = 9;
  nn::RandomParams params(7);
  UNet2DConditionModel model(parse(j), params);
  c10::InferenceMode guard;
  at::Tensor out = model.forward(randn({1, 9, 16, 16}, 1), at::tensor(int64_t{500}), randn({1, 5, 16}, 2));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  // A 4-channel sample is refused with the expected shape in the message.
  try {
    model.forward(randn({1, 4, 16, 16}, 1), at::tensor(int64_t{500}), randn({1, 5, 16}, 2));
    FAIL() << "4-channel sample accepted by a 9-channel UNet";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in_channels"), std::string::npos) << e.what();
  }
}

TEST(UNet, ReducedBlocksWithOddSizeRun) {
  nn::RandomParams params(11);
  UNet2DConditionModel model(parse(tiny_config()), params);
  c10::InferenceMode guard;
  std::map<std::string, at::Tensor> debug;
  // 9x7 is not a multiple of 2: the upsampler must restore the skip's size.
  at::Tensor out = model.forward(randn({2, 4, 9, 7}, 3), at::tensor({10.0f, 900.5f}), randn({2, 3, 16}, 4), &debug);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 4, 9, 7}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  EXPECT_EQ(debug.count("mid_block"), 0u);
  EXPECT_EQ(debug.at("down_blocks.0").sizes(), (std::vector<int64_t>{2, 32, 5, 4}));
  EXPECT_EQ(debug.at("up_blocks.0").sizes(), (std::vector<int64_t>{2, 64, 9, 7}));
  EXPECT_EQ(debug.at("time_embedding").sizes(), (std::vector<int64_t>{2, 128}));
}

TEST(UNet, ScalarTimestepBroadcastsToTheBatch) {
  nn::RandomParams params(12);
  UNet2DConditionModel model(parse(tiny_config()), params);
  c10::InferenceMode guard;
  at::Tensor x = randn({2, 4, 8, 8}, 5), text = randn({2, 4, 16}, 6);
  at::Tensor a = model.forward(x, at::tensor(617.25f), text);
  at::Tensor b = model.forward(x, at::tensor({617.25, 617.25}, at::kDouble), text);
  at::Tensor c = model.forward(x, at::tensor(617.0f), text);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-6);  // the fraction is not truncated away
}

TEST(UNet, UnsupportedConfigsNameTheField) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"class_embed_type", "timestep"},
      {"addition_embed_type", "text_time"},
      {"dual_cross_attention", true},
      {"time_embedding_type", "fourier"},
      {"resnet_time_scale_shift", "scale_shift"},
      {"time_cond_proj_dim", 256},
      {"mid_block_type", "UNetMidBlock2DSimpleCrossAttn"},
      {"down_block_types", {"SimpleCrossAttnDownBlock2D", "DownBlock2D"}},
      {"transformer_layers_per_block", {json{1, 2}, json{1, 2}}},
  };
  for (const auto& [field, value] : cases) {
    json j = tiny_config();
    j[field] = value;
    std::string msg = unsupported_message(j);
    EXPECT_NE(msg.find("'" + field + "'"), std::string::npos) << field << ": " << msg;
    EXPECT_NE(msg.find(kSource), std::string::npos) << field << ": " << msg;
  }
  // Inconsistent (rather than unsupported) values are errors naming the field too.
  json j = tiny_config();
  j["attention_head_dim"] = {4, 4, 4};
  try {
    parse(j);
    FAIL() << "3 head counts accepted for 2 blocks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'attention_head_dim'"), std::string::npos) << e.what();
  }
}

TEST(UNet, AttentionChunkSizeDoesNotChangeTheResult) {
  json j = tiny_config();
  j["attention_head_dim"] = 8;
  nn::RandomParams params(13);
  UNet2DConditionModel model(parse(j), params);
  c10::InferenceMode guard;
  at::Tensor x = randn({2, 4, 16, 16}, 7), text = randn({2, 77, 16}, 8), t = at::tensor({999, 321});
  const int64_t saved = nn::attention_chunk_bytes();
  at::Tensor whole = model.forward(x, t, text);
  nn::set_attention_chunk_bytes(1 << 16);  // 256 query rows split into chunks of 4
  at::Tensor chunked = model.forward(x, t, text);
  nn::set_attention_chunk_bytes(saved);
  EXPECT_LE((whole - chunked).abs().max().item<double>(), 1e-5);
}

TEST(UNet, GradientsReachConvIn) {
  nn::RandomParams params(14, /*record=*/true);
  UNet2DConditionModel model(parse(tiny_config()), params);
  at::Tensor conv_in;
  for (auto& [name, t] : params.recorded()) {
    at::Tensor p = t;
    p.requires_grad_(true);
    if (name == "conv_in.weight") conv_in = p;
  }
  ASSERT_TRUE(conv_in.defined());
  at::Tensor out = model.forward(randn({1, 4, 8, 8}, 9), at::tensor(int64_t{250}), randn({1, 3, 16}, 10));
  out.square().mean().backward();
  ASSERT_TRUE(conv_in.grad().defined());
  EXPECT_TRUE(conv_in.grad().isfinite().all().item<bool>());
  EXPECT_GT(conv_in.grad().abs().sum().item<double>(), 0.0);
}

TEST(UNet, PrepackedConvMatchesConvAndFollowsWeightEdits) {
  nn::RandomParams params(15);
  nn::Conv2d plain(params, "c", 8, 16, 3, 1, 1);
  nn::PrepackedConv2d packed(plain);
  at::Tensor x = randn({1, 8, 6, 5}, 16);
  {
    c10::InferenceMode guard;
    EXPECT_LE((packed(x) - plain(x)).abs().max().item<double>(), 1e-5);
  }
  EXPECT_FALSE(packed.plain_weight_released());  // `plain` still references the weight
  plain.weight.mul_(2.0);                        // e.g. a LoRA merge: the cached copy must not go stale
  c10::InferenceMode guard;
  EXPECT_LE((packed(x) - plain(x)).abs().max().item<double>(), 1e-5);
}

TEST(UNet, PrepackedConvReleasesASoleWeightAndRebuildsIt) {
  nn::RandomParams params(17);
  nn::Conv2d plain(params, "c", 8, 16, 3, 1, 1);
  const at::Tensor original = plain.weight.clone();
  const at::Tensor x = randn({1, 8, 6, 5}, 18);
  const at::Tensor want = plain(x);
  nn::PrepackedConv2d packed(std::move(plain));  // the layer now holds the only reference
  {
    c10::InferenceMode guard;
    EXPECT_LE((packed(x) - want).abs().max().item<double>(), 1e-5);
  }
  EXPECT_TRUE(packed.plain_weight_released());  // only the packed copy is kept
  // The plain path (autograd on) rebuilds the weight from the packed copy, bit for bit.
  EXPECT_LE((packed(x) - want).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(at::equal(packed.weight(), original));
}
