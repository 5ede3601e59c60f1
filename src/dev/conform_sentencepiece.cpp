// Conformance kind "sentencepiece_tokenizer" (vlm/tokenizer_sentencepiece). Its case.json has no "case"
// title; it is recognised by "models" (per .model file: model_file + cases) and "oracles". For every
// model and string it compares python sentencepiece's ids, pieces and decode, and the slow
// LlamaTokenizer's ids with legacy=True and legacy=False (plus the legacy=False tokens and decode).
#include <ATen/ATen.h>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "tokenizers/sentencepiece_tokenizer.hpp"

namespace pictor::dev {

namespace {

at::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids), at::TensorOptions().dtype(at::kLong));
}

std::vector<int64_t> ids_of(const json& k, const std::string& field) {
  if (!k.contains(field) || !k.at(field).is_array())
    throw Error("case.json: '" + field + "' is missing or not a list of ids");
  return k.at(field).get<std::vector<int64_t>>();
}

std::vector<std::string> strings_of(const json& k, const std::string& field) {
  if (!k.contains(field) || !k.at(field).is_array())
    throw Error("case.json: '" + field + "' is missing or not a list of strings");
  return k.at(field).get<std::vector<std::string>>();
}

bool is_sentencepiece_case(const CaseDir& c) {
  return c.spec.contains("models") && c.spec.at("models").is_object() && c.spec.contains("oracles") &&
         !c.spec.contains("case");
}

void run_sentencepiece_case(const CaseDir& c, ConformReport& report) {
  using tokenizers::SentencePieceTokenizer;
  for (const auto& [name, model] : c.spec.at("models").items()) {
    const auto file = c.dir / model.at("model_file").get<std::string>();
    const auto legacy = SentencePieceTokenizer::load(file, {true});
    const auto modern = SentencePieceTokenizer::load(file, {false});
    report.check(name + " vocab_size", legacy.processor().size() == model.value("vocab_size", -1));
    const json& cases = model.at("cases");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const json& k = cases[i];
      const std::string text = k.at("text").get<std::string>();
      const std::string tag = name + " case[" + std::to_string(i) + "] " + json(text).dump();
      const auto sp_ids = ids_of(k, "sentencepiece_encode");
      report.exact(tag + " sentencepiece_encode", ids_tensor(legacy.sp_encode(text)), ids_tensor(sp_ids));
      report.check(tag + " sentencepiece_pieces",
                   legacy.sp_encode_pieces(text) == strings_of(k, "sentencepiece_pieces"));
      report.check(tag + " sentencepiece_decode",
                   legacy.sp_decode(sp_ids) == k.at("sentencepiece_decode").get<std::string>());
      report.exact(tag + " llama_legacy_true_ids", ids_tensor(legacy.encode(text)),
                   ids_tensor(ids_of(k, "llama_legacy_true_ids")));
      const auto expected = ids_of(k, "llama_legacy_false_ids");
      report.exact(tag + " llama_legacy_false_ids", ids_tensor(modern.encode(text)), ids_tensor(expected));
      std::vector<std::string> tokens;
      for (const auto id : expected) tokens.push_back(modern.id_to_token(id));
      report.check(tag + " llama_legacy_false_tokens", tokens == strings_of(k, "llama_legacy_false_tokens"));
      report.check(tag + " llama_legacy_false_decode_skip_special",
                   modern.decode(expected, true) == k.at("llama_legacy_false_decode_skip_special").get<std::string>());
    }
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM("sentencepiece_tokenizer", is_sentencepiece_case, run_sentencepiece_case);

}  // namespace pictor::dev
