// Image -> text: description styles (prompt presets + post-processing), the VLM pipeline's prompt
// building against the golden Idefics3/LLaVA folders, and `pictor describe` end to end on a tiny
// random-weight SmolVLM-layout folder the project writes itself (`pictor dev make-tiny-vlm`).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "dev/make_tiny_vlm.hpp"
#include "formats/image.hpp"
#include "formats/tensor_store.hpp"
#include "image_samples.hpp"
#include "pictor/image_to_text.hpp"
#include "pipelines/describe_styles.hpp"
#include "pipelines/vlm_pipeline.hpp"
#include "support.hpp"
#include "tokenizers/llm_tokenizer.hpp"

using namespace pictor;
using pipelines::DescribeStyle;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

using samples::pattern_image;

// Built once via the CLI, so `pictor dev make-tiny-vlm` itself is exercised.
const fs::path& tiny_vlm() {
  static fs::path dir = [] {
    fs::path d = test::temp_dir("tiny-vlm") / "tiny-smolvlm";
    std::string log;
    const int rc = test::run_cli("dev make-tiny-vlm " + d.string(), &log);
    EXPECT_EQ(rc, 0) << log;
    return d;
  }();
  return dir;
}

const fs::path& images_dir() {
  static fs::path dir = [] {
    fs::path d = test::temp_dir("describe-images");
    write_image(d / "wide.png", pattern_image(90, 40, 0));
    write_image(d / "tall.jpg", pattern_image(30, 70, 1));
    write_image(d / "square.webp", pattern_image(48, 48, 2));
    return d;
  }();
  return dir;
}

// Runs a shell command line, capturing stdout only (stderr passes through).
int run_shell(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  size_t n;
  out->clear();
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out->append(buf.data(), n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string describe_cmd(const std::string& args) {
  return "describe --model " + tiny_vlm().string() + " --threads 1 " + args;
}

}  // namespace

// ---------------------------------------------------------------------------------------------- styles

TEST(DescribeStyles, NamesRoundTripAndUnknownIsAnError) {
  for (const char* name : {"alt", "caption", "detailed", "product"})
    EXPECT_STREQ(pipelines::describe_style_name(pipelines::parse_describe_style(name)), name);
  try {
    pipelines::parse_describe_style("poem");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("poem"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("alt, caption, detailed, product"), std::string::npos);
  }
}

TEST(DescribeStyles, PresetsAskForTheirShape) {
  EXPECT_NE(pipelines::style_prompt(DescribeStyle::Alt).find("one short sentence"), std::string::npos);
  EXPECT_NE(pipelines::style_prompt(DescribeStyle::Caption).find("one-line caption"), std::string::npos);
  EXPECT_NE(pipelines::style_prompt(DescribeStyle::Detailed).find("paragraphs"), std::string::npos);
  const std::string& product = pipelines::style_prompt(DescribeStyle::Product);
  for (const char* part : {"Title:", "Features:", "Colours and materials:"})
    EXPECT_NE(product.find(part), std::string::npos) << part;
  EXPECT_LT(pipelines::style_max_tokens(DescribeStyle::Alt), pipelines::style_max_tokens(DescribeStyle::Detailed));
}

TEST(DescribeStyles, AltTextDropsImagePreambles) {
  const std::pair<const char*, const char*> cases[] = {
      {"The image shows a red car parked on a street.", "A red car parked on a street."},
      {"Image of a cat sleeping on a sofa", "A cat sleeping on a sofa."},
      {"A picture of two dogs playing in the snow.", "Two dogs playing in the snow."},
      {"photo of a lighthouse at dawn.", "A lighthouse at dawn."},
      {"This is a photograph of a bowl of fruit.", "A bowl of fruit."},
      {"In this image, we can see a man riding a bike.", "A man riding a bike."},
      {"In this picture there are two cats on a bed", "Two cats on a bed."},
      {"  Alt text: \"A close-up photo of a bee on a flower.\"  ", "A bee on a flower."},
      {"An image that shows a picture of a dog.", "A dog."},
      // Not a preamble: kept as written.
      {"A photographer holding a camera.", "A photographer holding a camera."},
      {"Imagery of the sea.", "Imagery of the sea."},
  };
  for (const auto& [raw, want] : cases)
    EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Alt, raw), want) << raw;
}

TEST(DescribeStyles, AltTextIsOneSentence) {
  EXPECT_EQ(
      pipelines::postprocess_description(DescribeStyle::Alt, "A dog runs on a beach. The sky is blue! Waves crash."),
      "A dog runs on a beach.");
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Alt, "A sign for Dr. Smith on St. Mark's road.\nMore"),
            "A sign for Dr. Smith on St. Mark's road.");
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Alt, "A bottle holding 3.5 litres of water, next to"),
            "A bottle holding 3.5 litres of water, next to.");
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Alt, "A red kite flying,\nover a park"),
            "A red kite flying.");
  EXPECT_EQ(pipelines::first_sentence("Is it a cat? Yes."), "Is it a cat?");
  EXPECT_EQ(pipelines::first_sentence("He said \"stop.\" Then left."), "He said \"stop.\"");
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Alt, "   "), "");
}

TEST(DescribeStyles, AltTextIsCutAtAWordBoundaryWithin150Characters) {
  std::string raw = "A long table";
  while (raw.size() < 400) raw += " with plates and glasses";
  raw += ".";
  const std::string alt = pipelines::postprocess_description(DescribeStyle::Alt, raw);
  EXPECT_LE(pipelines::utf8_length(alt), pipelines::kAltTextMaxChars);
  EXPECT_GE(pipelines::utf8_length(alt), 120u);
  EXPECT_EQ(alt.back(), '.');
  // The cut is at a word boundary: what precedes the period is a whole word of the source.
  const std::string body = alt.substr(0, alt.size() - 1);
  EXPECT_EQ(raw.compare(0, body.size(), body), 0);
  EXPECT_EQ(raw[body.size()], ' ');

  EXPECT_EQ(pipelines::cut_at_word_boundary("alpha beta gamma", 12), "alpha beta");
  EXPECT_EQ(pipelines::cut_at_word_boundary("alpha beta, gamma", 13), "alpha beta");
  EXPECT_EQ(pipelines::cut_at_word_boundary("alpha beta gamma", 10), "alpha beta");
  EXPECT_EQ(pipelines::cut_at_word_boundary("supercalifragilistic", 5), "super");
  EXPECT_EQ(pipelines::cut_at_word_boundary("short", 150), "short");
  // Characters, not bytes: "é" is one character; a multi-byte character is never split.
  EXPECT_EQ(pipelines::cut_at_word_boundary("café crème brûlée", 10), "café crème");
  EXPECT_EQ(pipelines::utf8_length("café"), 4u);
  EXPECT_EQ(pipelines::cut_at_word_boundary("éééé", 2), "éé");
}

TEST(DescribeStyles, CaptionIsOneLine) {
  EXPECT_EQ(
      pipelines::postprocess_description(DescribeStyle::Caption, "  Caption: A cat\non a\n\n  warm windowsill.  "),
      "A cat on a warm windowsill.");
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Caption, "\"Sunset over the harbour\""),
            "Sunset over the harbour");
}

TEST(DescribeStyles, DetailedKeepsParagraphs) {
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Detailed,
                                               "\n First paragraph.   \r\nStill first.\n\n\n\nSecond one.  \n\n"),
            "First paragraph.\nStill first.\n\nSecond one.");
}

TEST(DescribeStyles, ProductNormalizesBulletsAndBold) {
  const std::string raw =
      "**Title:** Ceramic mug\n\n\n**Features:**\n* Large handle\n  • Glossy glaze\n+ Wide base\n"
      "Colours and materials: white ceramic   \n";
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Product, raw),
            "Title: Ceramic mug\n\nFeatures:\n- Large handle\n- Glossy glaze\n- Wide base\n"
            "Colours and materials: white ceramic");
}

// ------------------------------------------------------------------------------- golden prompt building

TEST(DescribeGolden, Idefics3PromptAndInputsMatchTransformers) {
  PICTOR_REQUIRE_GOLDEN();
  const fs::path dir = test::golden_dir() / "vlm" / "idefics3_split";
  const auto spec = nlohmann::json::parse(slurp(dir / "case.json"));
  auto vlm = pipelines::VisionLanguageModel::load(dir);
  ASSERT_EQ(vlm->family(), pipelines::VlmFamily::Idefics3);
  const nlohmann::json messages = spec["conversations"][0];
  EXPECT_EQ(vlm->render_prompt(messages), slurp(dir / "prompt_rendered.txt"));

  std::vector<Image> images;
  for (const auto& name : spec["images_per_sample"][0]) images.push_back(read_image(dir / name.get<std::string>()));
  const pipelines::VlmInputs in = vlm->prepare(images, messages);
  EXPECT_EQ(in.expanded_prompt, slurp(dir / "prompt_expanded.txt"));
  const TensorStore inputs = TensorStore::open_file(dir / "inputs.safetensors");
  ASSERT_TRUE(at::equal(in.input_ids, inputs.get("input_ids"))) << "token ids differ from the processor's";

  // Greedy decoding through the pipeline gives transformers' tokens (the saved generation config stops at
  // <end_of_utterance>, which the case does not reach within 12 tokens).
  models::GenerationConfig g = vlm->default_generation();
  g.max_new_tokens = 12;
  const pipelines::VlmOutput out = vlm->generate(in, g);
  const TensorStore outputs = TensorStore::open_file(dir / "outputs.safetensors");
  const at::Tensor want = outputs.get("generated_ids_stop_at_eos")[0].slice(0, in.input_ids.size(1));
  ASSERT_EQ(int64_t(out.new_tokens.size()), want.size(0));
  for (int64_t i = 0; i < want.size(0); ++i) EXPECT_EQ(out.new_tokens[size_t(i)], want[i].item<int64_t>()) << i;
  EXPECT_EQ(out.text, pipelines::strip_whitespace(vlm->tokenizer().decode(out.new_tokens, true)));
  EXPECT_FALSE(out.finished);
}

TEST(DescribeGolden, LlavaPromptAndInputsMatchTransformers) {
  PICTOR_REQUIRE_GOLDEN();
  const fs::path dir = test::golden_dir() / "vlm" / "llava";
  auto vlm = pipelines::VisionLanguageModel::load(dir);
  ASSERT_EQ(vlm->family(), pipelines::VlmFamily::Llava);
  const auto messages = pipelines::VisionLanguageModel::user_turn(1, "What is shown in this image?");
  EXPECT_EQ(vlm->render_prompt(messages), slurp(dir / "prompt_rendered.txt"));
  const pipelines::VlmInputs in = vlm->prepare({read_image(dir / "image_a_200x120.png")}, messages);
  const TensorStore inputs = TensorStore::open_file(dir / "inputs.safetensors");
  EXPECT_TRUE(at::equal(in.input_ids, inputs.get("input_ids")));
  EXPECT_TRUE(at::allclose(in.pixel_values, inputs.get("pixel_values"), 0, 2.0 / 255 / 0.26));
  // A marker/image count mismatch is a clear error, not a crash in the model.
  try {
    vlm->prepare({read_image(dir / "image_a_200x120.png"), read_image(dir / "image_b_37x301.png")}, messages);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image markers"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------- tiny model, API

TEST(DescribeTiny, FolderIsCompleteAndTokenizerKnowsTheSpecialTokens) {
  for (const char* f : {"config.json", "model.safetensors", "generation_config.json", "vocab.json", "merges.txt",
                        "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json"})
    EXPECT_TRUE(fs::exists(tiny_vlm() / f)) << f;
  auto tok = tokenizers::load_llm_tokenizer(tiny_vlm());
  for (const char* special : {"<image>", "<fake_token_around_image>", "<global-img>", "<row_1_col_1>", "<row_6_col_6>",
                              "<end_of_utterance>", "<|im_start|>"}) {
    const auto ids = tok->encode(special);
    ASSERT_EQ(ids.size(), 1u) << special;
    EXPECT_TRUE(tok->is_special_id(ids[0])) << special;
  }
  const std::string text = "User: Describe this image of a red cat, 3 ünïcödé words!";
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
  EXPECT_LT(tok->encode(" the image").size(), std::string(" the image").size());  // merges apply
  // The tokenizer.json alone gives the same ids as vocab.json + merges.txt.
  const fs::path json_only = test::temp_dir("tok-json");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(tiny_vlm() / f, json_only / f);
  EXPECT_EQ(tokenizers::load_llm_tokenizer(json_only)->encode(text), tok->encode(text));
}

TEST(DescribeTiny, PromptFollowsTheSmolVlmLayout) {
  auto vlm = pipelines::VisionLanguageModel::load(tiny_vlm());
  const auto messages = pipelines::VisionLanguageModel::user_turn(2, "Compare them.");
  EXPECT_EQ(vlm->render_prompt(messages), "<|im_start|>User:<image><image>Compare them.<end_of_utterance>\nAssistant:");
  const auto in = vlm->prepare({pattern_image(90, 40, 0), pattern_image(20, 20, 1)}, messages);
  // 90x40 -> 64x28 (longest edge 64) -> 64x32 (multiples of the 32-pixel tile): 1x2 tiles + global view.
  EXPECT_NE(in.expanded_prompt.find("<row_1_col_2>"), std::string::npos);
  EXPECT_NE(in.expanded_prompt.find("<global-img>"), std::string::npos);
  EXPECT_EQ(in.pixel_values.dim(), 5);
  EXPECT_EQ(in.input_ids.size(0), 1);
}

TEST(DescribeTiny, ApiDescribesStreamsAndIsDeterministic) {
  auto engine = ImageToText::load(tiny_vlm().string(), 1);
  EXPECT_EQ(engine->family(), "idefics3");
  DescribeOptions o;
  o.images = {pattern_image(90, 40, 0)};
  o.style = "detailed";
  o.max_tokens = 24;
  std::vector<std::string> pieces;
  const Description d = engine->describe(o, [&](const std::string& p) {
    pieces.push_back(p);
    return true;
  });
  EXPECT_FALSE(d.raw_text.empty());
  EXPECT_GT(pieces.size(), 1u) << "text should arrive in pieces";
  std::string streamed;
  for (const auto& p : pieces) streamed += p;
  EXPECT_EQ(pipelines::strip_whitespace(streamed), d.raw_text);
  EXPECT_EQ(d.prompt, pipelines::style_prompt(DescribeStyle::Detailed));
  EXPECT_GT(d.prompt_tokens, 0);
  EXPECT_LE(d.new_tokens, 24);

  // Sampling: the same seed gives the same text, another seed another text.
  o.temperature = 1.0;
  o.seed = 11;
  const std::string a = engine->describe(o).raw_text, b = engine->describe(o).raw_text;
  o.seed = 12;
  const std::string c = engine->describe(o).raw_text;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  // Stopping from the callback ends generation early.
  o.temperature = 0;
  int calls = 0;
  const Description stopped = engine->describe(o, [&](const std::string&) { return ++calls < 2; });
  EXPECT_LE(stopped.new_tokens, 4);
  EXPECT_FALSE(stopped.truncated);

  DescribeOptions bad = o;
  bad.images.clear();
  EXPECT_THROW(engine->describe(bad), Error);
  bad = o;
  bad.style = "haiku";
  EXPECT_THROW(engine->describe(bad), Error);
}

// ------------------------------------------------------------------------------------- tiny model, CLI

TEST(DescribeCli, DescribesPngAndJpegAndPrintsText) {
  for (const char* name : {"wide.png", "tall.jpg"}) {
    std::string out;
    const int rc =
        run_shell(test::cli_path() + " " + describe_cmd((images_dir() / name).string()) + " 2>/dev/null", &out);
    ASSERT_EQ(rc, 0) << name;
    EXPECT_FALSE(pipelines::strip_whitespace(out).empty()) << name;
    EXPECT_EQ(lines_of(out).size(), 1u) << "a caption is one line: " << out;
  }
}

TEST(DescribeCli, SameSeedSameTextAndStdinWorks) {
  const std::string img = (images_dir() / "wide.png").string();
  std::string a, b, c, s;
  ASSERT_EQ(run_shell(test::cli_path() + " " + describe_cmd(img + " --temperature 1 --seed 5") + " 2>/dev/null", &a),
            0);
  ASSERT_EQ(run_shell(test::cli_path() + " " + describe_cmd(img + " --temperature 1 --seed 5") + " 2>/dev/null", &b),
            0);
  ASSERT_EQ(run_shell(test::cli_path() + " " + describe_cmd(img + " --temperature 1 --seed 6") + " 2>/dev/null", &c),
            0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(run_shell("cat " + img + " | " + test::cli_path() + " " + describe_cmd("- --temperature 1 --seed 5") +
                          " 2>/dev/null",
                      &s),
            0);
  EXPECT_EQ(s, a);
}

TEST(DescribeCli, StreamPrintsTheTextOfTheAnswer) {
  const std::string img = (images_dir() / "square.webp").string();
  std::string plain, streamed;
  ASSERT_EQ(run_shell(test::cli_path() + " " + describe_cmd(img + " --style detailed --max-tokens 20") + " 2>/dev/null",
                      &plain),
            0);
  ASSERT_EQ(run_shell(test::cli_path() + " " + describe_cmd(img + " --style detailed --max-tokens 20 --stream") +
                          " 2>/dev/null",
                      &streamed),
            0);
  EXPECT_FALSE(pipelines::strip_whitespace(streamed).empty());
  // The detailed style only trims line ends and blank-line runs, so the streamed raw text matches modulo those.
  EXPECT_EQ(pipelines::postprocess_description(DescribeStyle::Detailed, streamed), pipelines::strip_whitespace(plain));
}

TEST(DescribeCli, FolderWritesJsonlAndResumes) {
  const fs::path dir = test::temp_dir("describe-folder");
  write_image(dir / "a.png", pattern_image(40, 40, 0));
  fs::create_directories(dir / "sub");
  write_image(dir / "sub" / "b.jpg", pattern_image(50, 20, 1));
  std::ofstream(dir / "corrupt.png") << "\x89PNG\r\n\x1a\n this is not a png";
  std::ofstream(dir / "empty.jpg");
  std::ofstream(dir / "notes.txt") << "not an image";
  const fs::path jsonl = dir / "captions.jsonl";

  std::string log;
  int rc = test::run_cli(describe_cmd(dir.string() + " --style alt"), &log);
  ASSERT_EQ(rc, 0) << "bad files in a folder are skipped, not fatal:\n" << log;
  EXPECT_NE(log.find("corrupt.png"), std::string::npos) << log;
  EXPECT_NE(log.find("empty.jpg"), std::string::npos) << log;
  EXPECT_NE(log.find("empty"), std::string::npos) << log;
  auto records = lines_of(slurp(jsonl));
  ASSERT_EQ(records.size(), 2u) << slurp(jsonl);
  std::set<std::string> paths;
  for (const auto& line : records) {
    const auto j = nlohmann::json::parse(line);
    for (const char* key : {"path", "style", "text", "model", "time"}) EXPECT_TRUE(j.contains(key)) << line;
    EXPECT_EQ(j["style"], "alt");
    EXPECT_EQ(j["model"], tiny_vlm().string());
    EXPECT_LE(pipelines::utf8_length(j["text"].get<std::string>()), 150u);
    paths.insert(fs::path(j["path"].get<std::string>()).filename().string());
  }
  EXPECT_EQ(paths, (std::set<std::string>{"a.png", "b.jpg"}));

  // Second run: the described files are skipped, nothing is appended.
  rc = test::run_cli(describe_cmd(dir.string() + " --style alt"), &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_NE(log.find("2 images already in"), std::string::npos) << log;
  EXPECT_EQ(lines_of(slurp(jsonl)).size(), 2u);

  // Another style is another job over the same files.
  rc = test::run_cli(describe_cmd(dir.string() + " --style caption --out " + (dir / "other.jsonl").string()), &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_EQ(lines_of(slurp(dir / "other.jsonl")).size(), 2u);
}

TEST(DescribeCli, BadImagesGiveClearErrors) {
  const fs::path dir = test::temp_dir("describe-bad");
  std::ofstream(dir / "empty.png");
  std::ofstream(dir / "corrupt.jpg") << "\xff\xd8\xff garbage";
  // A PNG whose header claims 100000 x 100000 pixels: refused before any pixel memory is allocated.
  std::vector<uint8_t> png = encode_png(pattern_image(4, 4, 0));
  const uint32_t side = 100000;
  for (int k = 0; k < 2; ++k)
    for (int b = 0; b < 4; ++b) png[size_t(16 + 4 * k + b)] = uint8_t(side >> (24 - 8 * b));
  // IHDR's CRC (over type + data, bytes 12..28) must stay valid, or the decoder stops at the CRC.
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= png[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  for (int b = 0; b < 4; ++b) png[size_t(29 + b)] = uint8_t(crc >> (24 - 8 * b));
  std::ofstream(dir / "huge.png", std::ios::binary).write(reinterpret_cast<const char*>(png.data()), long(png.size()));

  const std::pair<const char*, const char*> cases[] = {
      {"empty.png", "empty"}, {"corrupt.jpg", "corrupt.jpg"}, {"huge.png", "limit"}, {"missing.png", "missing.png"}};
  for (const auto& [name, want] : cases) {
    std::string log;
    const int rc = test::run_cli(describe_cmd((dir / name).string()), &log);
    EXPECT_EQ(rc, 1) << name << ": " << log;
    EXPECT_NE(log.find(want), std::string::npos) << name << ": " << log;
    EXPECT_NE(log.find(name), std::string::npos) << name << ": " << log;
    EXPECT_EQ(log.find("internal error"), std::string::npos) << log;
  }
  // Files are read before the model loads: a bad file is reported even when the model is missing too.
  std::string early;
  EXPECT_EQ(test::run_cli(
                "describe " + (dir / "empty.png").string() + " --no-pull --model " + (dir / "no-such-model").string(),
                &early),
            1);
  EXPECT_NE(early.find("is empty"), std::string::npos) << early;
  EXPECT_EQ(early.find("no-such-model"), std::string::npos) << early;

  // A good file next to a bad one is still described; the exit status reports the failure.
  std::string log;
  const int rc =
      test::run_cli(describe_cmd((images_dir() / "wide.png").string() + " " + (dir / "empty.png").string()), &log);
  EXPECT_EQ(rc, 1) << log;
  EXPECT_NE(log.find("==> " + (images_dir() / "wide.png").string() + " <=="), std::string::npos) << log;
}

TEST(DescribeCli, MissingModelExplainsHowToGetIt) {
  std::string log;
  const int rc = test::run_cli("describe " + (images_dir() / "wide.png").string() + " --no-pull --model nobody/none",
                               &log, "PICTOR_MODELS=" + test::temp_dir("no-models").string());
  EXPECT_EQ(rc, 1) << log;
  EXPECT_NE(log.find("pictor pull nobody/none"), std::string::npos) << log;
  EXPECT_NE(log.find("vision-language"), std::string::npos) << log;
}

TEST(DescribeCli, TogetherSendsAllImagesInOneRequest) {
  std::string out;
  const std::string imgs = (images_dir() / "wide.png").string() + " " + (images_dir() / "tall.jpg").string();
  ASSERT_EQ(run_shell(test::cli_path() + " " +
                          describe_cmd(imgs + " --together --prompt \"What differs?\" --out " +
                                       (test::temp_dir("together") / "t.jsonl").string()) +
                          " 2>/dev/null",
                      &out),
            0);
  EXPECT_EQ(out.find("==>"), std::string::npos) << "one answer, no per-file headers: " << out;
  EXPECT_FALSE(pipelines::strip_whitespace(out).empty());
  // Through the API: the two images become two <image> runs in one prompt.
  auto vlm = pipelines::VisionLanguageModel::load(tiny_vlm());
  const auto in = vlm->prepare({pattern_image(90, 40, 0), pattern_image(30, 70, 1)},
                               pipelines::VisionLanguageModel::user_turn(2, "What differs?"));
  size_t globals = 0;
  for (size_t p = 0; (p = in.expanded_prompt.find("<global-img>", p)) != std::string::npos; ++p) ++globals;
  EXPECT_EQ(globals, 2u);
}

// The int8 weight format end to end: the API loads it, reports it, and the answer is generated (the
// greedy text of a tiny random model may or may not match fp32; the logit error is measured by
// `pictor dev conform --int8` on the goldens, see docs/PERFORMANCE.md).
TEST(DescribeTiny, Int8DecoderLoadsAndDescribes) {
  auto engine = ImageToText::load(tiny_vlm().string(), 1, /*int8_decoder=*/true);
  EXPECT_TRUE(engine->int8_decoder());
  EXPECT_FALSE(ImageToText::load(tiny_vlm().string(), 1)->int8_decoder());
  DescribeOptions o;
  o.images = {pattern_image(90, 40, 0)};
  o.max_tokens = 12;
  const Description d = engine->describe(o);
  EXPECT_FALSE(d.raw_text.empty());
  EXPECT_GT(d.new_tokens, 0);
  EXPECT_EQ(engine->describe(o).raw_text, d.raw_text);  // still deterministic
}

TEST(DescribeCli, Int8FlagRuns) {
  std::string out;
  ASSERT_EQ(
      run_shell(test::cli_path() + " " + describe_cmd("--int8 --max-tokens 6 " + (images_dir() / "wide.png").string()) +
                    " 2>/dev/null",
                &out),
      0);
  EXPECT_FALSE(out.empty());
}
