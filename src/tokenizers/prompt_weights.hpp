#pragma once
// AUTOMATIC1111's prompt-attention syntax and its 75-token chunking, so long and weighted prompts
// tokenize the way the SD WebUI community writes them:
//   (text)        weight x 1.1 (nested: x 1.1 per level)
//   [text]        weight / 1.1
//   (text:1.3)    weight x 1.3
//   \( \) \[ \]   literal brackets, \\ a literal backslash
//   BREAK         (whole word, upper case) ends the current 75-token chunk
// Unbalanced brackets never fail: an unclosed '(' / '[' applies its factor to the rest of the prompt
// and an unmatched ')' / ']' is literal text, as in A1111.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizers/clip_tokenizer.hpp"

namespace pictor::tokenizers {

struct WeightedText {
  std::string text;
  double weight = 1.0;
  bool is_break = false;  // a BREAK keyword (text "BREAK", weight 1): the next text starts a new chunk
  bool operator==(const WeightedText&) const = default;
};

// A1111's parse_prompt_attention: runs of text with their weights; neighbours of equal weight are
// merged. Never empty: an empty prompt gives one {"", 1.0}.
std::vector<WeightedText> parse_prompt_weights(const std::string& prompt);

inline constexpr int kChunkTokens = 75;           // prompt tokens per chunk (77 with BOS/EOS)
inline constexpr int kCommaBacktrackTokens = 20;  // A1111's default comma_padding_backtrack

struct TokenChunk {
  std::vector<std::int64_t> ids;  // kChunkTokens + 2: BOS, tokens, EOS, pad...
  std::vector<float> weights;     // same length; 1.0 for BOS, EOS and padding
};

// Tokenizes a weighted prompt into chunks of at most 75 tokens, each laid out like
// ClipTokenizer::encode_padded (BOS, tokens, EOS, pad to 77). A chunk that fills up mid-prompt ends
// after the last comma when that comma is among its last 20 tokens (the remaining words move to the
// next chunk); BREAK ends a chunk early. Always returns at least one chunk.
std::vector<TokenChunk> tokenize_weighted(const ClipTokenizer& tokenizer, const std::string& prompt);

}  // namespace pictor::tokenizers
