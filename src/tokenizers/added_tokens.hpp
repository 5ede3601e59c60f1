#pragma once
// What transformers' slow tokenizers share around the model: the special-token configuration
// (tokenizer_config.json + special_tokens_map.json) and splitting text on added tokens before the model
// sees it (PreTrainedTokenizer.tokenize: tokens_trie.split, then lstrip/rstrip of the neighbours).
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizers/llm_tokenizer.hpp"

namespace pictor::tokenizers {

struct TokenizerConfigInfo {
  SpecialTokens special;
  std::vector<AddedToken> added;  // tokenizer_config.json added_tokens_decoder, sorted by id
  std::optional<bool> add_bos_token, add_eos_token, add_prefix_space, legacy;
  std::optional<std::string> chat_template;
};

// Reads tokenizer_config.json and special_tokens_map.json from `dir` (each optional; a malformed one
// throws pictor::Error naming the file and field).
TokenizerConfigInfo read_tokenizer_config(const std::filesystem::path& dir);

struct TextPiece {
  std::string text;
  const AddedToken* token = nullptr;  // set when the piece is this added token
};

// Splits `text` on the added tokens (leftmost, then longest match), applying each token's lstrip/rstrip
// to its neighbours; empty plain pieces are dropped.
std::vector<TextPiece> split_on_added_tokens(std::string_view text, const std::vector<AddedToken>& added);

}  // namespace pictor::tokenizers
