#pragma once
// The tokenizer interface of the language-model side (Llama/SmolLM2/Idefics3/LLaVA), with the same
// observable behaviour as transformers' SLOW Python tokenizers: added/special tokens are matched verbatim
// first, the text between them is tokenized by the model (byte-level BPE or SentencePiece), BOS/EOS are
// added according to tokenizer_config.json, and decode() reverses it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pictor::tokenizers {

// One entry of tokenizer_config.json "added_tokens_decoder" / tokenizer.json "added_tokens".
struct AddedToken {
  std::string content;
  std::int64_t id = 0;
  bool special = false;
  bool lstrip = false;  // swallow whitespace to the left of the token
  bool rstrip = false;  // swallow whitespace to the right of the token
};

// The named special tokens (special_tokens_map.json / tokenizer_config.json); empty when not set.
struct SpecialTokens {
  std::string bos, eos, unk, pad;
  std::vector<std::string> additional;
};

class LlmTokenizer {
 public:
  virtual ~LlmTokenizer() = default;
  // Ids of `text` (UTF-8); BOS/EOS added per the config's add_bos_token/add_eos_token when
  // add_special_tokens is true.
  virtual std::vector<std::int64_t> encode(const std::string& text, bool add_special_tokens = true) const = 0;
  // Token strings of `text` (no BOS/EOS), as tokenizer.tokenize(text).
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // Text of `ids`; skip_special_tokens drops BOS/EOS/UNK/PAD and the additional special tokens.
  // Unknown ids throw pictor::Error.
  virtual std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = false) const = 0;

  virtual std::optional<std::int64_t> token_to_id(const std::string& token) const = 0;
  // Throws pictor::Error for an id outside the vocabulary.
  virtual std::string id_to_token(std::int64_t id) const = 0;
  virtual std::size_t vocab_size() const = 0;  // largest id + 1, added tokens included

  const SpecialTokens& special_tokens() const { return special_; }
  // Id of a named special token (bos/eos/unk/pad); nullopt when it is not set.
  std::optional<std::int64_t> bos_id() const { return named_id(special_.bos); }
  std::optional<std::int64_t> eos_id() const { return named_id(special_.eos); }
  std::optional<std::int64_t> unk_id() const { return named_id(special_.unk); }
  std::optional<std::int64_t> pad_id() const { return named_id(special_.pad); }
  bool is_special_id(std::int64_t id) const;

 protected:
  std::optional<std::int64_t> named_id(const std::string& token) const {
    if (token.empty()) return std::nullopt;
    return token_to_id(token);
  }
  SpecialTokens special_;
  std::vector<AddedToken> added_;  // every added token, in id order
  bool add_bos_ = false, add_eos_ = false;
};

// Loads the tokenizer of a model folder: tokenizer.model (SentencePiece) when present, else byte-level
// BPE from vocab.json + merges.txt or tokenizer.json. Throws pictor::Error naming the folder when none fits.
std::unique_ptr<LlmTokenizer> load_llm_tokenizer(const std::filesystem::path& dir);

}  // namespace pictor::tokenizers
