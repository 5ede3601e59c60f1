// Image autoencoders: AutoencoderKL and AutoencoderTiny match diffusers on the golden cases, tiled
// decoding agrees with untiled decoding and has no seams, and bad configs/checkpoints are refused
// with errors that name the field or tensor.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "formats/tensor_store.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/autoencoder_tiny.hpp"
#include "models/tiled_blend.hpp"
#include "support.hpp"

using namespace pictor;
using models::AutoencoderKL;
using models::AutoencoderKLConfig;
using models::AutoencoderTiny;
using models::AutoencoderTinyConfig;
namespace fs = std::filesystem;

namespace {

// A tiny SD-structured VAE: 3 levels (factor 4), 4 groups, mid-block attention.
json tiny_kl_json(bool mid_attention = true) {
  return json{{"mid_block_add_attention", mid_attention},
              {"_class_name", "AutoencoderKL"},
              {"in_channels", 3},
              {"out_channels", 3},
              {"latent_channels", 4},
              {"block_out_channels", {8, 16, 16}},
              {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
              {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}},
              {"layers_per_block", 1},
              {"norm_num_groups", 4},
              {"act_fn", "silu"},
              {"scaling_factor", 0.18215},
              {"sample_size", 32}};
}

AutoencoderKLConfig tiny_kl_config(bool mid_attention = true) {
  return AutoencoderKLConfig::from_json(JsonConfig(tiny_kl_json(mid_attention), "tiny_vae/config.json"));
}

// Writes config.json + weights drawn from RandomParams into `dir`, with `edit` applied to the tensor list.
void write_tiny_kl(const fs::path& dir,
                   const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
  nn::RandomParams params(7, /*record=*/true);
  AutoencoderKL model(tiny_kl_config(), params);
  auto tensors = params.recorded();
  edit(tensors);
  fs::create_directories(dir);
  save_tensors(dir / "diffusion_pytorch_model.safetensors", tensors);
  std::ofstream(dir / "config.json") << tiny_kl_json().dump(2);
}

double max_abs(const at::Tensor& t) {
  return t.abs().max().item<double>();
}

}  // namespace

TEST(AutoencoderKL, GoldenSd1Vae) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / "sd/sd1/vae", &kind);
  EXPECT_EQ(kind, "autoencoder_kl");
  EXPECT_EQ(rep.results().size(), 7u);
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

TEST(AutoencoderTiny, GoldenTaesd) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  auto rep = dev::run_conform(test::golden_dir() / "sd/taesd", &kind);
  EXPECT_EQ(kind, "autoencoder_tiny");
  EXPECT_EQ(rep.results().size(), 4u);
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

TEST(AutoencoderKL, GoldenPosteriorSampleUsesGenerator) {
  PICTOR_REQUIRE_GOLDEN();
  auto vae = AutoencoderKL::load(test::golden_dir() / "sd/sd1/vae");
  at::InferenceMode guard;
  const auto post = vae->encode(at::rand({1, 3, 32, 32}) * 2 - 1);
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(123);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(123);
  const at::Tensor s = post.sample(g1);
  const at::Tensor expected = post.mean + post.std * at::randn(post.mean.sizes(), g2);
  EXPECT_TRUE(at::allclose(s, expected, 0, 0));
  EXPECT_GT(max_abs(s - post.mean), 0.0);
}

TEST(Tiling, TileStartsCoverWithMinimumOverlap) {
  for (int64_t len : {1, 7, 8, 9, 24, 64, 65, 128, 200}) {
    for (auto [tile, overlap] : {std::pair<int64_t, int64_t>{8, 2}, {64, 8}, {5, 0}}) {
      const auto s = models::tile_starts(len, tile, overlap);
      ASSERT_FALSE(s.empty());
      EXPECT_EQ(s.front(), 0);
      if (len <= tile) {
        EXPECT_EQ(s.size(), 1u);
        continue;
      }
      EXPECT_EQ(s.back() + tile, len) << len << " " << tile;
      for (size_t i = 1; i < s.size(); ++i) {
        EXPECT_GE(s[i - 1] + tile - s[i], overlap) << "len " << len << " tile " << tile;
        EXPECT_GT(s[i], s[i - 1]);
      }
    }
  }
  EXPECT_THROW(models::tile_starts(10, 4, 4), Error);
}

TEST(Tiling, BlendOfIdentityMapIsExact) {
  // With a map that has no global state the blended result must reproduce the map exactly: this
  // checks that the weights of overlapping tiles are normalised everywhere.
  const at::Tensor x = at::randn({2, 3, 37, 23});
  auto up2 = [](const at::Tensor& t) { return at::upsample_nearest2d(t, {t.size(2) * 2, t.size(3) * 2}) * 3.0; };
  const at::Tensor tiled = models::tiled_apply(x, models::TileGrid{8, 3, 1, 2}, up2);
  EXPECT_LT(max_abs(tiled - up2(x)), 1e-5);
}

TEST(AutoencoderKL, TiledDecodeMatchesUntiledAwayFromSeams) {
  // 60x60 latents in tiles of 32 with overlap >= 4: tiles start at 0 and 28 on each axis (4 tiles),
  // cross-faded over latent [28, 32). The decoder's receptive field reaches ~14 latent pixels, so
  // latent [0, 12)^2 is out of reach of every tile cut: there the only difference from the untiled
  // decode is that GroupNorm statistics (and attention) see one tile instead of the whole image, which
  // with random weights is a few percent of the output's spread.
  for (bool attention : {false, true}) {
    SCOPED_TRACE(attention ? "with mid-block attention" : "without mid-block attention");
    nn::RandomParams params(11);
    AutoencoderKL vae(tiny_kl_config(attention), params);
    at::InferenceMode guard;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    const at::Tensor z = at::randn({1, 4, 60, 60}, gen);  // 240x240 px, factor 4

    vae.set_tiling(false);
    const at::Tensor full = vae.decode(z);
    vae.set_tiling(true, 32, 4);
    ASSERT_TRUE(vae.uses_tiling(240, 240));
    const at::Tensor tiled = vae.decode(z);
    ASSERT_EQ(tiled.sizes(), full.sizes());
    EXPECT_FALSE(at::isnan(tiled).any().item<bool>());

    const double scale = full.std().item<double>();
    const at::Tensor diff = (tiled - full).abs();
    EXPECT_GT(max_abs(diff), 1e-6);  // tiling is not exact, and must not pretend to be
    const at::Tensor away = diff.narrow(2, 0, 12 * 4).narrow(3, 0, 12 * 4);
    EXPECT_LT(max_abs(away), (attention ? 0.8 : 0.4) * scale) << "scale " << scale;
    EXPECT_LT(away.mean().item<double>(), (attention ? 0.12 : 0.06) * scale);
    EXPECT_LT(diff.mean().item<double>(), 0.12 * scale);

    // No seams: the tiled-minus-untiled difference changes smoothly across columns. A hard cut between
    // tiles shows as one column whose step is >10x the typical one; the linear cross-fade keeps the
    // largest step within a few times the median.
    const at::Tensor d = tiled - full;
    const at::Tensor steps = (d.narrow(3, 1, d.size(3) - 1) - d.narrow(3, 0, d.size(3) - 1)).abs().mean({0, 1, 2});
    EXPECT_LT(steps.max().item<double>(), 6.0 * steps.median().item<double>())
        << "worst column " << steps.argmax().item<int64_t>();
  }
}

TEST(AutoencoderKL, TilingIsAutomaticAboveThreshold) {
  nn::RandomParams params(3);
  AutoencoderKL vae(tiny_kl_config(), params);
  EXPECT_FALSE(vae.uses_tiling(768, 768));
  EXPECT_TRUE(vae.uses_tiling(1024, 1024));
  vae.set_tiling(false);
  EXPECT_FALSE(vae.uses_tiling(2048, 2048));
  vae.set_auto_tiling(64 * 64);
  EXPECT_TRUE(vae.uses_tiling(72, 64));
  EXPECT_THROW(vae.set_tiling(true, 8, 8), Error);
}

TEST(AutoencoderKL, TiledEncodeCloseToUntiled) {
  nn::RandomParams params(13);
  AutoencoderKL vae(tiny_kl_config(), params);
  at::InferenceMode guard;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor image = at::rand({1, 3, 240, 240}, gen) * 2 - 1;
  vae.set_tiling(false);
  const auto full = vae.encode(image);
  vae.set_tiling(true, 32, 4);  // image tiles of 128 px starting at 0 and 112 px
  const auto tiled = vae.encode(image);
  ASSERT_EQ(tiled.mean.sizes(), full.mean.sizes());
  EXPECT_FALSE(at::isnan(tiled.mean).any().item<bool>());
  EXPECT_FALSE(at::isnan(tiled.std).any().item<bool>());
  const double scale = full.mean.std().item<double>();
  const at::Tensor diff = (tiled.mean - full.mean).abs();
  EXPECT_GT(max_abs(diff), 1e-6);
  EXPECT_LT(diff.mean().item<double>(), 0.12 * scale);
  EXPECT_LT(max_abs(diff.narrow(2, 0, 12).narrow(3, 0, 12)), 0.4 * scale);
}

TEST(AutoencoderKL, UnsupportedBlockTypeNamesField) {
  json j = tiny_kl_json();
  j["down_block_types"][1] = "AttnDownEncoderBlock2D";
  try {
    AutoencoderKLConfig::from_json(JsonConfig(j, "vae/config.json"));
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("vae/config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("down_block_types"), std::string::npos) << msg;
    EXPECT_NE(msg.find("AttnDownEncoderBlock2D"), std::string::npos) << msg;
  }
  json k = tiny_kl_json();
  k["up_block_types"] = {"UpDecoderBlock2D", "UpDecoderBlock2D"};
  EXPECT_THROW(AutoencoderKLConfig::from_json(JsonConfig(k, "vae/config.json")), Error);
}

TEST(AutoencoderKL, MissingTensorIsNamed) {
  const fs::path dir = test::temp_dir("vae-missing");
  const std::string dropped = "decoder.up_blocks.1.resnets.0.conv2.weight";
  write_tiny_kl(dir, [&](auto& tensors) { std::erase_if(tensors, [&](const auto& t) { return t.first == dropped; }); });
  try {
    AutoencoderKL::load(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dropped), std::string::npos) << e.what();
  }
}

TEST(AutoencoderKL, LegacyAttentionNamesLoad) {
  // The same weights saved under the pre-0.14 names (query/key/value/proj_attn) decode identically.
  const fs::path cur = test::temp_dir("vae-cur"), old = test::temp_dir("vae-legacy");
  write_tiny_kl(cur, [](auto&) {});
  write_tiny_kl(old, [](auto& tensors) {
    for (auto& [name, t] : tensors)
      for (auto [from, to] : {std::pair<std::string, std::string>{".to_q.", ".query."},
                              {".to_k.", ".key."},
                              {".to_v.", ".value."},
                              {".to_out.0.", ".proj_attn."}})
        if (auto pos = name.find(from); pos != std::string::npos) name.replace(pos, from.size(), to);
  });
  auto a = AutoencoderKL::load(cur), b = AutoencoderKL::load(old);
  at::InferenceMode guard;
  const at::Tensor z = at::randn({1, 4, 6, 6});
  const at::Tensor da = a->decode(z);
  EXPECT_TRUE(at::equal(da, b->decode(z)));
  EXPECT_EQ(da.sizes(), (at::IntArrayRef{1, 3, 24, 24}));
}

TEST(AutoencoderTiny, TiledDecodeEqualsUntiledInTileInteriors) {
  json j{{"encoder_block_out_channels", {8, 8, 8}},
         {"decoder_block_out_channels", {8, 8, 8}},
         {"num_encoder_blocks", {1, 1, 1}},
         {"num_decoder_blocks", {1, 1, 1}},
         {"latent_channels", 4}};
  AutoencoderTinyConfig cfg = AutoencoderTinyConfig::from_json(JsonConfig(j, "taesd/config.json"));
  nn::RandomParams params(17);
  AutoencoderTiny taesd(cfg, params);
  at::InferenceMode guard;
  const at::Tensor z = at::randn({1, 4, 80, 80});
  taesd.set_tiling(false);
  const at::Tensor full = taesd.decode(z);
  ASSERT_EQ(full.sizes(), (at::IntArrayRef{1, 3, 320, 320}));
  taesd.set_tiling(true, 32, 4);  // starts 0, 24, 48: the middle tile alone covers latent [32, 48)
  const at::Tensor tiled = taesd.decode(z);
  EXPECT_FALSE(at::isnan(tiled).any().item<bool>());
  // A conv-only decoder is local (receptive field radius ~7 latent pixels here): inside the middle
  // tile, far enough from its borders, the result is the untiled one.
  const at::Tensor centre = (tiled - full).narrow(2, 34 * 4, 12 * 4).narrow(3, 34 * 4, 12 * 4);
  EXPECT_LT(max_abs(centre), 1e-4);
  EXPECT_GT(max_abs(tiled - full), 1e-6);
  // Scale helpers invert each other inside [0, 1].
  const at::Tensor lat = at::randn({1, 4, 4, 4});
  EXPECT_LT(max_abs(taesd.unscale_latents(taesd.scale_latents(lat)) - lat.clamp(-3, 3)), 1e-5);
}

TEST(AutoencoderTiny, UnsupportedConfigsNamed) {
  json j{{"upsample_fn", "bilinear"}};
  try {
    AutoencoderTinyConfig::from_json(JsonConfig(j, "taesd/config.json"));
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("upsample_fn"), std::string::npos) << e.what();
  }
  json k{{"num_encoder_blocks", {1, 3}}};
  EXPECT_THROW(AutoencoderTinyConfig::from_json(JsonConfig(k, "taesd/config.json")), Error);
}
