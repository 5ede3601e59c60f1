#pragma once
// CLIP's byte-level BPE tokenizer, as Stable Diffusion uses it through transformers' CLIPTokenizer:
//   1. the text is split on special/added tokens ("<|startoftext|>", "<|endoftext|>", and for SD2 the
//      pad token "!"), which map straight to their ids;
//   2. every other piece is cleaned like ftfy.fix_text (text_fixer.hpp), whitespace is collapsed and
//      the text lowercased;
//   3. CLIP's regex splits it into words ('s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+);
//   4. each word's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode), "</w>"
//      marks the word end, and merges.txt is applied in rank order.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pictor::tokenizers {

struct ClipTokenizerOptions {
  // Replaces the pad token named by the config files, like from_pretrained(..., pad_token="!").
  // SD2's tokenizer pads with "!" (id 0); it then also becomes a special token that text is split on.
  std::optional<std::string> pad_token;
};

class ClipTokenizer {
 public:
  // Reads vocab.json and merges.txt (required) and tokenizer_config.json / special_tokens_map.json
  // (optional: special tokens, added tokens, model_max_length). Throws pictor::Error naming the file
  // (and line or field) when one is missing or malformed.
  static ClipTokenizer load(const std::filesystem::path& tokenizer_dir, const ClipTokenizerOptions& options = {});

  // BPE ids of `text` (UTF-8) without BOS/EOS and without truncation.
  std::vector<std::int64_t> encode(const std::string& text) const;
  // [BOS, ids truncated to max_len - 2, EOS, pad...] of exactly max_len ids, as
  // CLIPTokenizer(text, padding="max_length", max_length=max_len, truncation=True).
  std::vector<std::int64_t> encode_padded(const std::string& text, int max_len = 77) const;
  // Text of `ids`: BOS/EOS are skipped and the padding after the last EOS dropped; word ends become
  // spaces. Unknown ids throw pictor::Error.
  std::string decode(const std::vector<std::int64_t>& ids) const;

  std::int64_t bos_id() const { return bos_id_; }
  std::int64_t eos_id() const { return eos_id_; }
  std::int64_t pad_id() const { return pad_id_; }
  const std::string& pad_token() const { return pad_token_; }
  // Switches the pad token (e.g. "!" for SD2); it must be in the vocabulary.
  void set_pad_token(const std::string& token);
  // tokenizer_config.json model_max_length (77 when absent).
  int model_max_length() const { return model_max_length_; }

  std::size_t vocab_size() const { return encoder_.size(); }
  std::optional<std::int64_t> token_to_id(const std::string& token) const;
  // The BPE token string of an id (e.g. "cat</w>"); throws pictor::Error for an unknown id.
  const std::string& id_to_token(std::int64_t id) const;

  // An empty tokenizer (no vocabulary) so owners can be default-constructed; fill it with load().
  ClipTokenizer() = default;

 private:
  std::int64_t special_id(const std::string& token, const std::string& role) const;
  void rebuild_split_tokens();
  // Ids of one piece of text that contains no split token.
  void encode_plain(std::string_view text, std::vector<std::int64_t>& ids) const;
  // Appends the BPE tokens of one pre-tokenized word (already mapped through bytes_to_unicode).
  void bpe(const std::string& word, std::vector<std::int64_t>& ids) const;

  std::string source_;  // tokenizer directory, for error messages
  std::unordered_map<std::string, std::int64_t> encoder_;
  std::unordered_map<std::int64_t, std::string> decoder_;
  std::unordered_map<std::string, int> merge_ranks_;                // "first second" -> rank
  std::unordered_map<std::string, std::int64_t> added_tokens_;      // added_tokens_decoder content -> id
  std::vector<std::pair<std::string, std::int64_t>> split_tokens_;  // tokens text is split on
  std::string bos_token_ = "<|startoftext|>", eos_token_ = "<|endoftext|>", unk_token_ = "<|endoftext|>";
  std::string pad_token_ = "<|endoftext|>";
  std::int64_t bos_id_ = 0, eos_id_ = 0, unk_id_ = 0, pad_id_ = 0;
  int model_max_length_ = 77;
};

}  // namespace pictor::tokenizers
