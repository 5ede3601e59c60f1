// The CLIP tokenizer: golden ids for every prompt of the golden tokenizer case (SD1 and SD2 pad
// conventions), the padded layout, the ftfy-like text fixes, decode, and clear errors for bad files.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "support.hpp"
#include "tokenizers/clip_tokenizer.hpp"
#include "tokenizers/text_fixer.hpp"

using namespace pictor;
using tokenizers::ClipTokenizer;
namespace fs = std::filesystem;

namespace {

fs::path golden_tokenizer_dir() {
  return test::golden_dir() / "sd" / "sd1" / "tokenizer";
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A tiny hand-made vocabulary: enough to check BPE merging and every loader error.
fs::path tiny_tokenizer(const std::string& tag, const std::string& vocab, const std::string& merges) {
  const fs::path dir = test::temp_dir(tag);
  write_file(dir / "vocab.json", vocab);
  write_file(dir / "merges.txt", merges);
  return dir;
}

const std::string kTinyVocab =
    R"({"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "ab": 5, "<|startoftext|>": 6, "<|endoftext|>": 7})";
const std::string kTinyMerges = "#version: 0.2\nb </w>\na b</w>\na b\n";

std::string load_error(const fs::path& dir, const tokenizers::ClipTokenizerOptions& opts = {}) {
  try {
    ClipTokenizer::load(dir, opts);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ClipTokenizer, GoldenCaseMatchesEveryPromptForSd1AndSd2) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  const auto report = dev::run_conform(golden_tokenizer_dir(), &kind);
  EXPECT_EQ(kind, "clip_tokenizer");
  // 41 prompts x 2 variants + the untruncated lengths.
  EXPECT_EQ(report.results().size(), 41u * 2 + 1);
  EXPECT_TRUE(report.all_pass()) << report.format();
}

TEST(ClipTokenizer, KnownIdsAndPaddedLayout) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = ClipTokenizer::load(golden_tokenizer_dir());
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.pad_id(), 49407);
  EXPECT_EQ(tok.model_max_length(), 77);
  EXPECT_EQ(tok.vocab_size(), 49408u);
  const std::vector<int64_t> astronaut = {320, 8853, 539, 550, 18376, 6765, 320, 4558};
  EXPECT_EQ(tok.encode("a photograph of an astronaut riding a horse"), astronaut);
  EXPECT_EQ(tok.encode("A  PHOTOGRAPH of\tan astronaut riding a horse  "), astronaut);

  const auto padded = tok.encode_padded("a photograph of an astronaut riding a horse");
  ASSERT_EQ(padded.size(), 77u);
  EXPECT_EQ(padded[0], 49406);
  EXPECT_EQ(std::vector<int64_t>(padded.begin() + 1, padded.begin() + 9), astronaut);
  EXPECT_EQ(padded[9], 49407);
  for (size_t i = 10; i < padded.size(); ++i) EXPECT_EQ(padded[i], 49407);

  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "cat ";
  const auto truncated = tok.encode_padded(long_prompt);
  ASSERT_EQ(truncated.size(), 77u);
  EXPECT_EQ(truncated[75], 2368);  // "cat</w>"
  EXPECT_EQ(truncated[76], 49407);
  EXPECT_EQ(tok.encode_padded("", 5), (std::vector<int64_t>{49406, 49407, 49407, 49407, 49407}));
  EXPECT_THROW(tok.encode_padded("x", 1), Error);
}

TEST(ClipTokenizer, Sd2PadTokenTurnsEveryExclamationMarkIntoIdZero) {
  PICTOR_REQUIRE_GOLDEN();
  auto sd1 = ClipTokenizer::load(golden_tokenizer_dir());
  const auto sd2 = ClipTokenizer::load(golden_tokenizer_dir(), {.pad_token = "!"});
  EXPECT_EQ(sd2.pad_id(), 0);
  EXPECT_EQ(sd2.encode("!!!"), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(sd1.encode("!!!").size(), 1u);
  EXPECT_NE(sd1.encode("!!!")[0], 0);
  const auto padded = sd2.encode_padded("wow!");
  EXPECT_EQ(padded[2], 0);
  EXPECT_EQ(padded[3], 49407);
  EXPECT_EQ(padded[4], 0);
  sd1.set_pad_token("!");
  EXPECT_EQ(sd1.encode("!!!"), sd2.encode("!!!"));
  EXPECT_THROW(sd1.set_pad_token("<|no such token|>"), Error);
}

TEST(ClipTokenizer, LiteralSpecialTokensMapToTheirIds) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = ClipTokenizer::load(golden_tokenizer_dir());
  const auto ids = tok.encode("<|startoftext|>cat<|endoftext|>");
  EXPECT_EQ(ids, (std::vector<int64_t>{49406, 2368, 49407}));
}

TEST(ClipTokenizer, DecodeRoundTrips) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = ClipTokenizer::load(golden_tokenizer_dir());
  for (const std::string text : {"a photo of an astronaut riding a horse on mars", "café déjà vu 日本語 🐱",
                                 "supercalifragilisticexpialidocious"}) {
    EXPECT_EQ(tok.decode(tok.encode_padded(text)), text);
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
  EXPECT_EQ(tok.decode(tok.encode_padded("A Photo, OF a cat")), "a photo , of a cat");
  const auto sd2 = ClipTokenizer::load(golden_tokenizer_dir(), {.pad_token = "!"});
  EXPECT_EQ(sd2.decode(sd2.encode_padded("hello world")), "hello world");
  EXPECT_THROW(tok.decode({49406, 123456789}), Error);
}

TEST(ClipTokenizer, TextFixesLikeFtfy) {
  using tokenizers::fix_text;
  EXPECT_EQ(fix_text("mojibake: cafÃ© Ã©tÃ©"), "mojibake: café été");
  EXPECT_EQ(fix_text("Ã¼ber in æ—¥æœ¬"), "über in 日本");
  EXPECT_EQ(fix_text("Tokyo 東京 and cafÃ©"), "Tokyo 東京 and café");  // embedded mojibake
  EXPECT_EQ(fix_text("&amp; &lt;3 &quot;x&quot; &#39;y&#x27; &eacute; &bogus;"), "& <3 \"x\" 'y' é &bogus;");
  EXPECT_EQ(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");  // looks like HTML: entities kept
  EXPECT_EQ(fix_text("\xEF\xAC\x81 \xEF\xAC\x80 \xEF\xBC\xA1\xEF\xBC\x91"), "fi ff A1");
  EXPECT_EQ(fix_text("\xE2\x80\x9Chi\xE2\x80\x9D \xE2\x80\x98x\xE2\x80\x99"), "\"hi\" 'x'");
  EXPECT_EQ(fix_text("e\xCC\x81"), "\xC3\xA9");  // NFC
  EXPECT_EQ(fix_text("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(fix_text("x\x1B[31my\x07z\xEF\xBB\xBF"), "xyz");
  EXPECT_EQ(fix_text("Café, naïve, Ångström, ÀÉÎÕÜ"), "Café, naïve, Ångström, ÀÉÎÕÜ");  // already fine
  EXPECT_EQ(fix_text("zero\xE2\x80\x8Bwidth soft\xC2\xADhyphen"), "zero\xE2\x80\x8Bwidth soft\xC2\xADhyphen");
}

TEST(ClipTokenizer, TinyVocabularyMergesInRankOrder) {
  const auto tok = ClipTokenizer::load(tiny_tokenizer("tok_tiny", kTinyVocab, kTinyMerges));
  EXPECT_EQ(tok.encode("ab"), (std::vector<int64_t>{4}));  // a + b</w>
  EXPECT_EQ(tok.encode("AB ab"), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(tok.encode("ba"), (std::vector<int64_t>{1, 2}));  // no merge applies
  EXPECT_EQ(tok.encode("abab"), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(tok.decode({6, 5, 4, 7}), "abab");
}

TEST(ClipTokenizer, BadFilesGiveClearErrors) {
  const auto missing_dir = test::temp_dir("tok_missing");
  EXPECT_NE(load_error(missing_dir).find("vocab.json"), std::string::npos);
  EXPECT_NE(load_error(missing_dir / "nope").find("not a directory"), std::string::npos);

  auto dir = tiny_tokenizer("tok_novocab", kTinyVocab, kTinyMerges);
  fs::remove(dir / "merges.txt");
  EXPECT_NE(load_error(dir).find("merges.txt: cannot open"), std::string::npos);

  EXPECT_NE(load_error(tiny_tokenizer("tok_badjson", "{\"a\": 0,", kTinyMerges)).find("vocab.json"), std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_array", "[1, 2]", kTinyMerges)).find("non-empty JSON object"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_badid", R"({"a": "zero"})", kTinyMerges)).find("token 'a'"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_dupid", R"({"a": 0, "b": 0})", kTinyMerges)).find("id 0 is used by two"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_badline", kTinyVocab, "#version: 0.2\na b\nab\n")).find("merges.txt:3"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_foreign", kTinyVocab, "#version: 0.2\nb a\n")).find("'ba' is not in vocab"),
            std::string::npos);
  EXPECT_NE(load_error(tiny_tokenizer("tok_empty", kTinyVocab, "#version: 0.2\n")).find("no merges"),
            std::string::npos);

  dir = tiny_tokenizer("tok_badpad", kTinyVocab, kTinyMerges);
  write_file(dir / "special_tokens_map.json", R"({"pad_token": "<pad>"})");
  EXPECT_NE(load_error(dir).find("pad_token '<pad>'"), std::string::npos);
  write_file(dir / "special_tokens_map.json", R"({"pad_token": 5})");
  EXPECT_NE(load_error(dir).find("special_tokens_map.json: field 'pad_token'"), std::string::npos);
  write_file(dir / "special_tokens_map.json", R"({"pad_token": {"content": "a"}})");
  EXPECT_EQ(ClipTokenizer::load(dir).pad_id(), 0);
  EXPECT_NE(load_error(dir, {.pad_token = "zzz"}).find("pad_token 'zzz'"), std::string::npos);
}
