// End-to-end generation on a tiny random-weight model that the project writes itself
// (`pictor dev make-tiny-sd`): CLI flags, metadata, determinism, img2img, inpainting, bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/make_tiny_sd.hpp"
#include "formats/generation_params.hpp"
#include "formats/image.hpp"
#include "pictor/text_to_image.hpp"
#include "support.hpp"

using namespace pictor;
namespace fs = std::filesystem;

namespace {

const fs::path& tiny_model() {
  static fs::path dir = [] {
    fs::path d = test::temp_dir("tiny-sd") / "tiny-sd";
    dev::TinySdOptions o;
    o.taesd_dir = d.parent_path() / "tiny-taesd";
    dev::make_tiny_sd(d, o);
    return d;
  }();
  return dir;
}

const fs::path& tiny_inpaint_model() {
  static fs::path dir = [] {
    fs::path d = test::temp_dir("tiny-sd-inpaint") / "tiny-sd-inpainting";
    dev::TinySdOptions o;
    o.inpainting = true;
    dev::make_tiny_sd(d, o);
    return d;
  }();
  return dir;
}

LoadOptions threads(int n) {
  LoadOptions o;
  o.threads = n;
  return o;
}

GenerateOptions basic(uint64_t seed) {
  GenerateOptions o;
  o.prompt = "a photo of a (red:1.3) cat";
  o.negative_prompt = "blurry";
  o.width = 64;
  o.height = 48;
  o.steps = 3;
  o.guidance = 5.0;
  o.seed = seed;
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Image solid(int w, int h, uint8_t v, int channels = 3) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = channels;
  im.pixels.assign(size_t(w) * h * channels, v);
  return im;
}

}  // namespace

TEST(Generate, SameSeedSameImageDifferentSeedDifferentImage) {
  auto engine = TextToImage::load(tiny_model().string(), threads(2));
  auto a = engine->generate(basic(7));
  auto b = engine->generate(basic(7));
  auto c = engine->generate(basic(8));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].image.width, 64);
  EXPECT_EQ(a[0].image.height, 48);
  EXPECT_EQ(a[0].image.pixels, b[0].image.pixels);
  EXPECT_NE(a[0].image.pixels, c[0].image.pixels);
}

TEST(Generate, ThreadCountDoesNotChangeTheImage) {
  auto one = TextToImage::load(tiny_model().string(), threads(1))->generate(basic(11));
  auto two = TextToImage::load(tiny_model().string(), threads(2))->generate(basic(11));
  EXPECT_EQ(one[0].image.pixels, two[0].image.pixels);
}

TEST(Generate, EverySamplerRunsAndBatchesUseConsecutiveSeeds) {
  auto engine = TextToImage::load(tiny_model().string());
  for (const std::string s : {"euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "lcm"}) {
    auto o = basic(3);
    o.sampler = s;
    o.count = 2;
    auto imgs = engine->generate(o);
    ASSERT_EQ(imgs.size(), 2u) << s;
    EXPECT_EQ(imgs[0].seed, 3u);
    EXPECT_EQ(imgs[1].seed, 4u);
    EXPECT_NE(imgs[0].image.pixels, imgs[1].image.pixels) << s;
    // Image k of a batch equals a single run with seed + k.
    auto single = basic(4);
    single.sampler = s;
    EXPECT_EQ(engine->generate(single)[0].image.pixels, imgs[1].image.pixels) << s;
  }
}

TEST(Generate, ParametersFollowA1111Format) {
  auto engine = TextToImage::load(tiny_model().string());
  auto img = engine->generate(basic(42))[0];
  auto p = parse_a1111(img.parameters);
  EXPECT_EQ(p.prompt, "a photo of a (red:1.3) cat");
  EXPECT_EQ(p.negative_prompt, "blurry");
  EXPECT_EQ(p.seed, 42u);
  EXPECT_EQ(p.steps, 3);
  EXPECT_EQ(p.width, 64);
  EXPECT_EQ(p.height, 48);
  EXPECT_NE(img.parameters.find("Sampler: Euler"), std::string::npos) << img.parameters;
}

TEST(Generate, PromptWeightsAndLongPromptsChangeTheImage) {
  auto engine = TextToImage::load(tiny_model().string());
  auto o = basic(5);
  o.prompt = "a photo of a red cat";
  auto plain = engine->generate(o)[0].image.pixels;
  o.prompt = "a photo of a (red:1.5) cat";
  EXPECT_NE(engine->generate(o)[0].image.pixels, plain);
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "a red cat, ";
  o.prompt = long_prompt;  // > 75 tokens: encoded in chunks, not truncated
  auto long_img = engine->generate(o)[0].image.pixels;
  o.prompt = long_prompt + " at night in a blue forest";
  EXPECT_NE(engine->generate(o)[0].image.pixels, long_img);
}

TEST(Generate, Img2ImgRunsTheStrengthShareOfStepsFromTheInitImage) {
  auto engine = TextToImage::load(tiny_model().string());
  auto o = basic(9);
  o.init_image = solid(64, 48, 200);
  o.steps = 10;
  o.strength = 0.3;
  int reported = 0, total = 0;
  auto a = engine->generate(o, [&](const Progress& p) {
    ++reported;
    total = p.total;
    return true;
  });
  EXPECT_EQ(reported, 3);  // diffusers: int(10 * 0.3) steps
  EXPECT_EQ(total, 3);
  // The init image matters, and img2img differs from txt2img with the same seed.
  o.init_image = solid(64, 48, 20);
  EXPECT_NE(engine->generate(o)[0].image.pixels, a[0].image.pixels);
  auto txt = basic(9);
  txt.steps = 10;
  EXPECT_NE(engine->generate(txt)[0].image.pixels, a[0].image.pixels);
  // A cancelled run stops with pictor::Cancelled.
  EXPECT_THROW(engine->generate(o, [](const Progress&) { return false; }), Cancelled);
}

TEST(Generate, InpaintingKeepsPixelsOutsideTheMask) {
  for (const fs::path& model : {tiny_model(), tiny_inpaint_model()}) {
    auto engine = TextToImage::load(model.string());
    auto o = basic(13);
    o.init_image = solid(64, 48, 77);
    Image mask = solid(64, 48, 0);
    for (int y = 0; y < 48; ++y)
      for (int x = 32; x < 64; ++x)
        for (int ch = 0; ch < 3; ++ch) mask.pixels[(size_t(y) * 64 + x) * 3 + ch] = 255;
    o.mask = mask;
    o.strength = 1.0;
    auto img = engine->generate(o)[0].image;
    int changed_inside = 0;
    for (int y = 0; y < 48; ++y)
      for (int x = 0; x < 64; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          uint8_t v = img.pixels[(size_t(y) * 64 + x) * 3 + ch];
          if (x < 32)
            ASSERT_EQ(v, 77) << model << " at " << x << "," << y;
          else
            changed_inside += v != 77;
        }
    EXPECT_GT(changed_inside, 100) << model;
  }
}

TEST(Generate, BadRequestsAreClearErrors) {
  auto engine = TextToImage::load(tiny_model().string());
  auto o = basic(1);
  o.width = 60;
  try {
    engine->generate(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 8"), std::string::npos) << e.what();
  }
  o = basic(1);
  o.sampler = "nope";
  EXPECT_THROW(engine->generate(o), Error);
  auto inpaint = TextToImage::load(tiny_inpaint_model().string());
  EXPECT_THROW(inpaint->generate(basic(1)), Error);  // 9-channel UNet needs image + mask
}

TEST(GenerateCli, WritesPngWithParametersAndInfoReadsThem) {
  fs::path out = test::temp_dir("cli") / "cat.png";
  std::string log;
  int rc = test::run_cli("generate \"a red cat\" --model " + tiny_model().string() +
                             " --steps 2 --size 64x64 --seed 5 --guidance 3 --sampler euler_a --out " + out.string(),
                         &log);
  ASSERT_EQ(rc, 0) << log;
  ASSERT_TRUE(fs::exists(out)) << log;
  std::string first = slurp(out);
  rc = test::run_cli("info " + out.string(), &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_NE(log.find("Seed: 5"), std::string::npos) << log;
  EXPECT_NE(log.find("Sampler: Euler a"), std::string::npos) << log;
  // Reproducible from the command line, across thread counts.
  rc = test::run_cli("generate \"a red cat\" --model " + tiny_model().string() +
                         " --steps 2 --size 64x64 --seed 5 --guidance 3 --sampler euler_a --threads 1 --out " +
                         out.string(),
                     &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_EQ(slurp(out), first);
}

TEST(GenerateCli, BatchImg2ImgAndInpaintFromFiles) {
  fs::path d = test::temp_dir("cli-batch");
  std::string log;
  ASSERT_EQ(test::run_cli("generate \"a dog\" --model " + tiny_model().string() +
                              " --steps 1 --size 64x64 --seed 100 -n 2 --out " + (d / "dog.png").string(),
                          &log),
            0)
      << log;
  EXPECT_TRUE(fs::exists(d / "dog-0.png"));
  EXPECT_TRUE(fs::exists(d / "dog-1.png"));
  ASSERT_EQ(test::run_cli("generate \"a cat\" --model " + tiny_model().string() + " --steps 4 --init " +
                              (d / "dog-0.png").string() + " --strength 0.5 --seed 1 --out " + (d / "i2i.png").string(),
                          &log),
            0)
      << log;
  write_png(d / "mask.png", solid(64, 64, 255));
  ASSERT_EQ(test::run_cli("generate \"a cat\" --model " + tiny_model().string() + " --steps 2 --init " +
                              (d / "dog-0.png").string() + " --mask " + (d / "mask.png").string() + " --out " +
                              (d / "inpaint.png").string(),
                          &log),
            0)
      << log;
  EXPECT_TRUE(fs::exists(d / "inpaint.png"));
}

TEST(GenerateCli, ClearErrorsForBadFlagsAndMissingModels) {
  std::string log;
  EXPECT_NE(test::run_cli("generate \"x\" --model " + tiny_model().string() + " --size 65x64", &log), 0);
  EXPECT_NE(log.find("multiples of 8"), std::string::npos) << log;
  EXPECT_NE(test::run_cli("generate \"x\" --model " + tiny_model().string() + " --size big", &log), 0);
  EXPECT_NE(log.find("WIDTHxHEIGHT"), std::string::npos) << log;
  EXPECT_NE(test::run_cli("generate \"x\" --model /nonexistent/model", &log), 0);
  EXPECT_NE(log.find("--model"), std::string::npos) << log;
  // Default model missing and the hub unreachable: a non-zero exit that says how to get a model.
  fs::path empty = test::temp_dir("no-models");
  EXPECT_NE(
      test::run_cli("generate \"x\"", &log, "PICTOR_MODELS=" + empty.string() + " HF_ENDPOINT=http://127.0.0.1:9"), 0);
  EXPECT_NE(log.find("pictor pull stabilityai/sd-turbo"), std::string::npos) << log;
  EXPECT_NE(log.find("--model DIR"), std::string::npos) << log;
  EXPECT_NE(test::run_cli("generate", &log), 0);
  EXPECT_NE(test::run_cli("generate --help", &log), 1);
  for (const char* flag : {"--negative", "--steps", "--guidance", "--seed", "--size", "--sampler", "--count", "--init",
                           "--strength", "--mask", "--model", "--out", "--threads", "--vae", "--noise"})
    EXPECT_NE(log.find(flag), std::string::npos) << flag;
}

TEST(GenerateCli, TaesdDecodeAndInfoOnNonImage) {
  fs::path d = test::temp_dir("cli-taesd");
  std::string log;
  ASSERT_EQ(test::run_cli("generate \"a cat\" --model " + tiny_model().string() + " --vae " +
                              (tiny_model().parent_path() / "tiny-taesd").string() +
                              " --taesd-decode --steps 1 --size 64x64 --out " + (d / "t.png").string(),
                          &log),
            0)
      << log;
  std::ofstream(d / "not.png") << "hello";
  EXPECT_NE(test::run_cli("info " + (d / "not.png").string(), &log), 0);
}
