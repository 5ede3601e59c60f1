#pragma once
// Byte-level BPE as GPT-2 / SmolLM2 / Idefics3 use it, matching transformers' slow GPT2Tokenizer:
//   1. added/special tokens (<|im_start|>, <image>, <row_1_col_1> ...) are split out verbatim;
//   2. the rest is pre-tokenized by GPT-2's regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
//      ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+), optionally after splitting digits one by one (SmolLM2's
//      tokenizer.json Digits pre-tokenizer);
//   3. each word's UTF-8 bytes are mapped to printable characters (bytes_to_unicode) and merged in
//      merges order; decode() maps the characters back to bytes (invalid UTF-8 -> U+FFFD).
#include <filesystem>
#include <unordered_map>

#include "tokenizers/llm_tokenizer.hpp"

namespace pictor::tokenizers {

class BpeTokenizer : public LlmTokenizer {
 public:
  // vocab.json + merges.txt when both exist (the files slow tokenizers read), else tokenizer.json;
  // tokenizer_config.json / special_tokens_map.json add special tokens and the BOS/EOS rules.
  static BpeTokenizer load(const std::filesystem::path& dir);
  static BpeTokenizer load_vocab_merges(const std::filesystem::path& dir);
  // tokenizer.json (model.vocab, model.merges as "a b" strings or [a, b] pairs, added_tokens,
  // pre_tokenizer ByteLevel / Sequence[Digits, Split(GPT-2 regex), ByteLevel], post_processor
  // TemplateProcessing for BOS/EOS); config files of its folder are read too when present.
  static BpeTokenizer load_tokenizer_json(const std::filesystem::path& file);

  std::vector<std::int64_t> encode(const std::string& text, bool add_special_tokens = true) const override;
  std::vector<std::string> tokenize(const std::string& text) const override;
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = false) const override;
  std::optional<std::int64_t> token_to_id(const std::string& token) const override;
  std::string id_to_token(std::int64_t id) const override;
  std::size_t vocab_size() const override { return vocab_size_; }

 private:
  BpeTokenizer() = default;
  void finish_loading(const std::filesystem::path& config_dir);
  void add_merge(const std::string& first, const std::string& second, const std::string& source, std::size_t index);
  // BPE tokens of one plain (no added token) piece of text.
  void tokenize_plain(const std::string& text, std::vector<std::string>& out) const;
  void bpe_word(const std::string& mapped_word, std::vector<std::string>& out) const;

  std::string source_;
  std::unordered_map<std::string, std::int64_t> encoder_;
  std::unordered_map<std::int64_t, std::string> decoder_;
  std::unordered_map<std::string, int> merge_ranks_;           // "first second" -> rank
  std::unordered_map<std::int64_t, std::size_t> added_index_;  // id -> index in added_
  std::size_t vocab_size_ = 0;
  bool add_prefix_space_ = false;
  bool split_digits_ = false;  // Digits(individual_digits=true) before the byte-level regex
};

}  // namespace pictor::tokenizers
