#include "tokenizers/llm_tokenizer.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "tokenizers/bpe_tokenizer.hpp"
#include "tokenizers/sentencepiece_tokenizer.hpp"

namespace pictor::tokenizers {

bool LlmTokenizer::is_special_id(std::int64_t id) const {
  if (std::any_of(added_.begin(), added_.end(), [&](const AddedToken& a) { return a.special && a.id == id; }))
    return true;
  for (const auto& id_of : {bos_id(), eos_id(), unk_id(), pad_id()})
    if (id_of && *id_of == id) return true;
  return false;
}

std::unique_ptr<LlmTokenizer> load_llm_tokenizer(const std::filesystem::path& dir) {
  // tokenizer.model is what the slow LlamaTokenizer reads, so it wins over a tokenizer.json beside it.
  if (std::filesystem::exists(dir / "tokenizer.model"))
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(dir / "tokenizer.model"));
  if ((std::filesystem::exists(dir / "vocab.json") && std::filesystem::exists(dir / "merges.txt")) ||
      std::filesystem::exists(dir / "tokenizer.json"))
    return std::make_unique<BpeTokenizer>(BpeTokenizer::load(dir));
  throw Error(dir.string() + ": no tokenizer (tokenizer.model, vocab.json + merges.txt, or tokenizer.json)");
}

}  // namespace pictor::tokenizers
