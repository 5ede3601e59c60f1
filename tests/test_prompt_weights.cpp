// AUTOMATIC1111 prompt-attention syntax and 75-token chunking.
#include <gtest/gtest.h>

#include "support.hpp"
#include "tokenizers/prompt_weights.hpp"

using namespace pictor;
using tokenizers::parse_prompt_weights;
using tokenizers::WeightedText;

namespace {

std::vector<std::pair<std::string, double>> parsed(const std::string& prompt) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& p : parse_prompt_weights(prompt)) out.emplace_back(p.is_break ? "<BREAK>" : p.text, p.weight);
  return out;
}

void expect_parse(const std::string& prompt, const std::vector<std::pair<std::string, double>>& expected) {
  const auto got = parsed(prompt);
  ASSERT_EQ(got.size(), expected.size()) << prompt;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, expected[i].first) << prompt << " part " << i;
    EXPECT_NEAR(got[i].second, expected[i].second, 1e-12) << prompt << " part " << i;
  }
}

tokenizers::ClipTokenizer golden_tokenizer() {
  return tokenizers::ClipTokenizer::load(test::golden_dir() / "sd" / "sd1" / "tokenizer");
}

}  // namespace

TEST(PromptWeights, A1111Syntax) {
  expect_parse("a cat", {{"a cat", 1.0}});
  expect_parse("", {{"", 1.0}});
  expect_parse("a (cat) dog", {{"a ", 1.0}, {"cat", 1.1}, {" dog", 1.0}});
  expect_parse("((cat))", {{"cat", 1.1 * 1.1}});
  expect_parse("[cat]", {{"cat", 1 / 1.1}});
  expect_parse("[[cat]]", {{"cat", (1 / 1.1) * (1 / 1.1)}});
  expect_parse("(cat:1.3) dog", {{"cat", 1.3}, {" dog", 1.0}});
  expect_parse("(cat: 0.5 )", {{"cat", 0.5}});
  expect_parse("(a (b:2) c)", {{"a ", 1.1}, {"b", 2.2}, {" c", 1.1}});
  expect_parse("([cat])", {{"cat", 1.1 / 1.1}});
  expect_parse("(red:1.2)(blue:1.2)", {{"redblue", 1.2}});  // equal neighbours merge
  expect_parse("a (b:-1) c", {{"a ", 1.0}, {"b", -1.0}, {" c", 1.0}});
}

TEST(PromptWeights, EscapesAndLiterals) {
  expect_parse(R"(\(cat\) \[dog\])", {{"(cat) [dog]", 1.0}});
  expect_parse(R"(a\\b)", {{"a\\b", 1.0}});
  expect_parse("smile :) ok", {{"smile :) ok", 1.0}});  // ':' and ')' without an open '(' are text
  expect_parse("ratio 16:9", {{"ratio 16:9", 1.0}});
  expect_parse("x :1.5) y", {{"x :1.5) y", 1.0}});    // weight syntax outside brackets is text
  expect_parse("(cat:1.2.3)", {{"cat:1.2.3", 1.1}});  // not a number: text, the bracket gives 1.1
  expect_parse("{blue hair}", {{"{blue hair}", 1.0}});
}

TEST(PromptWeights, UnbalancedBracketsDoNotCrash) {
  expect_parse("(cat", {{"cat", 1.1}});
  expect_parse("a [cat", {{"a ", 1.0}, {"cat", 1 / 1.1}});
  expect_parse("cat)", {{"cat)", 1.0}});
  expect_parse("cat]]", {{"cat]]", 1.0}});
  expect_parse("((((", {{"", 1.0}});
  expect_parse("\\", {{"", 1.0}});
  for (const std::string p : {")(", "][", "(:", "(:)", "(a:", "[a:1.2)", "((a:2)", "\\(\\", "BREAK(", ":::"})
    EXPECT_NO_THROW(parse_prompt_weights(p)) << p;
}

TEST(PromptWeights, BreakKeyword) {
  expect_parse("a cat BREAK a dog", {{"a cat", 1.0}, {"<BREAK>", 1.0}, {"a dog", 1.0}});
  expect_parse("(a cat BREAK a dog)", {{"a cat", 1.1}, {"<BREAK>", 1.0}, {"a dog", 1.1}});
  expect_parse("BREAKFAST break BREAKS", {{"BREAKFAST break BREAKS", 1.0}});
  expect_parse("x,BREAK,y", {{"x,", 1.0}, {"<BREAK>", 1.0}, {",y", 1.0}});
}

TEST(PromptWeights, ChunksOfA200TokenPrompt) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = golden_tokenizer();
  std::string prompt;
  for (int i = 0; i < 200; ++i) prompt += "cat ";
  const auto chunks = tokenizers::tokenize_weighted(tok, prompt);
  ASSERT_EQ(chunks.size(), 3u);
  for (size_t c = 0; c < chunks.size(); ++c) {
    ASSERT_EQ(chunks[c].ids.size(), 77u);
    ASSERT_EQ(chunks[c].weights.size(), 77u);
    EXPECT_EQ(chunks[c].ids[0], tok.bos_id());
    const size_t n = c < 2 ? 75 : 50;
    for (size_t i = 1; i <= n; ++i) EXPECT_EQ(chunks[c].ids[i], 2368);
    EXPECT_EQ(chunks[c].ids[n + 1], tok.eos_id());
    for (float w : chunks[c].weights) EXPECT_EQ(w, 1.0f);
  }
  // A short prompt gives exactly what encode_padded gives.
  const auto one = tokenizers::tokenize_weighted(tok, "a photo of a cat, 8k");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].ids, tok.encode_padded("a photo of a cat, 8k"));
  // Empty prompt: one chunk of BOS, EOS, padding.
  const auto empty = tokenizers::tokenize_weighted(tok, "");
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].ids, tok.encode_padded(""));
}

TEST(PromptWeights, WeightsFollowTokens) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = golden_tokenizer();
  const auto chunks = tokenizers::tokenize_weighted(tok, "a (red:1.5) [car]");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].ids, tok.encode_padded("a red car"));
  const std::vector<float> head = {1.0f, 1.0f, 1.5f, static_cast<float>(1 / 1.1), 1.0f, 1.0f};
  EXPECT_EQ(std::vector<float>(chunks[0].weights.begin(), chunks[0].weights.begin() + 6), head);
}

TEST(PromptWeights, BreakStartsANewChunk) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = golden_tokenizer();
  const auto chunks = tokenizers::tokenize_weighted(tok, "a cat BREAK a dog");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].ids, tok.encode_padded("a cat"));
  EXPECT_EQ(chunks[1].ids, tok.encode_padded("a dog"));
  EXPECT_EQ(tokenizers::tokenize_weighted(tok, "a cat BREAK").size(), 1u);
}

TEST(PromptWeights, FullChunkBacktracksToTheLastComma) {
  PICTOR_REQUIRE_GOLDEN();
  const auto tok = golden_tokenizer();
  // 70 x "cat", a comma (token 71), then 10 x "dog": the chunk fills at 75 with the comma 4 tokens
  // back, so the dogs after the comma move to the second chunk together.
  std::string prompt;
  for (int i = 0; i < 70; ++i) prompt += "cat ";
  prompt += ", ";
  for (int i = 0; i < 10; ++i) prompt += "dog ";
  const auto chunks = tokenizers::tokenize_weighted(tok, prompt);
  ASSERT_EQ(chunks.size(), 2u);
  const int64_t comma = *tok.token_to_id(",</w>"), dog = *tok.token_to_id("dog</w>");
  EXPECT_EQ(chunks[0].ids[71], comma);
  EXPECT_EQ(chunks[0].ids[72], tok.eos_id());
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(chunks[1].ids[i], dog);
  EXPECT_EQ(chunks[1].ids[11], tok.eos_id());

  // A comma further back than 20 tokens does not move anything: plain cut at 75.
  prompt = "cat , ";
  for (int i = 0; i < 100; ++i) prompt += "dog ";
  const auto cut = tokenizers::tokenize_weighted(tok, prompt);
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[0].ids[75], dog);
  EXPECT_EQ(cut[0].ids[76], tok.eos_id());
}
