#pragma once
// SentencePiece .model tokenizers (Llama-2 style), with transformers' slow LlamaTokenizer on top:
// the model itself (normalizer with its precompiled charsmap, Unigram/BPE segmentation, byte fallback) is
// spm::Processor (our own implementation, matching python sentencepiece 0.1.97), and this class adds what
// LlamaTokenizer does around it: splitting on added/special tokens, BOS/EOS, and the `legacy` flag.
//   legacy = true : every piece between special tokens is encoded with the SentencePiece dummy prefix
//                   (so "<s>. how" gives "<s>", "▁", "." ...);
//   legacy = false: the dummy prefix is turned off in the model and added once by hand in front of the
//                   text; text right after a special token gets no prefix space.
#include <filesystem>
#include <memory>

#include "tokenizers/llm_tokenizer.hpp"

#include "tokenizers/sentencepiece_processor.hpp"

namespace pictor::tokenizers {

struct SentencePieceOptions {
  // Overrides tokenizer_config.json "legacy" (transformers' default when absent is true).
  std::optional<bool> legacy;
};

class SentencePieceTokenizer : public LlmTokenizer {
 public:
  // `model_file` is a tokenizer.model; tokenizer_config.json / special_tokens_map.json of its folder are
  // read when present. Throws pictor::Error naming the file when it is not a valid SentencePiece model.
  static SentencePieceTokenizer load(const std::filesystem::path& model_file, const SentencePieceOptions& options = {});

  std::vector<std::int64_t> encode(const std::string& text, bool add_special_tokens = true) const override;
  std::vector<std::string> tokenize(const std::string& text) const override;
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = false) const override;
  std::optional<std::int64_t> token_to_id(const std::string& token) const override;
  std::string id_to_token(std::int64_t id) const override;
  std::size_t vocab_size() const override;

  bool legacy() const { return legacy_; }
  // Plain SentencePiece on the unmodified model (python SentencePieceProcessor.encode / decode): no
  // special-token splitting, no BOS.
  std::vector<std::int64_t> sp_encode(const std::string& text) const;
  std::vector<std::string> sp_encode_pieces(const std::string& text) const;
  std::string sp_decode(const std::vector<std::int64_t>& ids) const;
  const spm::Processor& processor() const { return *raw_; }

 private:
  SentencePieceTokenizer() = default;
  std::vector<std::string> model_tokenize(const std::string& text) const;  // LlamaTokenizer._tokenize
  bool is_special_token(const std::string& token) const;

  std::string source_;
  std::shared_ptr<const spm::Processor> raw_;    // the model as stored
  std::shared_ptr<const spm::Processor> model_;  // used for encoding (legacy=false: no dummy prefix)
  bool legacy_ = true;
  bool add_prefix_space_ = true;
  std::size_t unk_token_length_ = 0;  // pieces of the unk token text (legacy=false prefix trick)
};

}  // namespace pictor::tokenizers
