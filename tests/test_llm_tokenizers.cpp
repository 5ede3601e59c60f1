// LLM tokenizers (byte-level BPE): golden conformance through the
// runner, round trips, and clear errors for malformed files.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "support.hpp"
#include "tokenizers/bpe_tokenizer.hpp"
#include "tokenizers/chat_template.hpp"

using namespace pictor;
using tokenizers::BpeTokenizer;

namespace {

void expect_golden_pass(const std::string& rel, const std::string& kind_expected, std::size_t min_checks) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  const auto rep = dev::run_conform(test::golden_dir() / rel, &kind);
  EXPECT_EQ(kind, kind_expected);
  EXPECT_GE(rep.results().size(), min_checks) << rep.format();
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

using test::write_file;

using test::expect_error;

}  // namespace

TEST(LlmTokenizerGolden, ByteLevelBpe) {
  expect_golden_pass("vlm/tokenizer_bpe", "bpe_tokenizer", 45 * 5 + 2);
}

TEST(BpeTokenizer, RoundTripsTrickyStrings) {
  PICTOR_REQUIRE_GOLDEN();
  const auto dir = test::golden_dir() / "vlm/tokenizer_bpe";
  const auto tok = BpeTokenizer::load(dir);
  const auto spec = read_json_file(dir / "case.json");
  for (const auto& k : spec.at("cases")) {
    const std::string text = k.at("text").get<std::string>();
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
  // Bytes that are not valid UTF-8 decode to U+FFFD, as Python's errors="replace".
  const auto e9 = tok.encode("\xC3\xA9");  // "é" = two byte tokens
  ASSERT_EQ(e9.size(), 2u);
  EXPECT_EQ(tok.decode({e9[0]}), "\xEF\xBF\xBD");
  EXPECT_THROW(tok.decode({100000}), Error);
}

TEST(BpeTokenizer, SpecialTokenIdsAndAddRules) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = BpeTokenizer::load(test::golden_dir() / "vlm/tokenizer_bpe");
  EXPECT_EQ(tok.bos_id(), 1);  // <|im_start|>
  EXPECT_EQ(tok.eos_id(), 2);  // <|im_end|>
  EXPECT_EQ(tok.token_to_id("<image>"), 660);
  EXPECT_TRUE(tok.is_special_id(660));
  EXPECT_FALSE(tok.is_special_id(42));
  EXPECT_EQ(tok.encode("<image>", true), tok.encode("<image>", false));  // add_bos_token = false
  EXPECT_EQ(tok.vocab_size(), 679u);
}

TEST(BpeTokenizer, MalformedFilesNameTheFile) {
  const auto dir = test::temp_dir("bpe_bad");
  write_file(dir / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [42]}}");
  expect_error([&] { BpeTokenizer::load(dir); }, {"tokenizer.json", "merges[0]"});
  write_file(dir / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
  expect_error([&] { BpeTokenizer::load(dir); }, {"tokenizer.json", "WordPiece"});
  write_file(dir / "tokenizer.json", "{not json");
  expect_error([&] { BpeTokenizer::load(dir); }, {"tokenizer.json"});
  write_file(dir / "vocab.json", "{\"a\": 0, \"b\": 1}");
  write_file(dir / "merges.txt", "#version: 0.2\na b c\n");
  expect_error([&] { BpeTokenizer::load(dir); }, {"merges.txt:2"});
  const auto empty = test::temp_dir("bpe_none");
  expect_error([&] { tokenizers::load_llm_tokenizer(empty); }, {empty.string()});
}

TEST(LlmTokenizer, MalformedSentencePieceModelNamesTheFile) {
  const auto dir = test::temp_dir("spm_only");
  write_file(dir / "tokenizer.model", "x");
  expect_error([&] { tokenizers::load_llm_tokenizer(dir); }, {"tokenizer.model", "SentencePiece"});
}
