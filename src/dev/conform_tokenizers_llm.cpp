// Conformance kinds for the language-model tokenizers (vlm/tokenizer_bpe, vlm/tokenizer_sentencepiece).
// Those case.json files have no "case" title, so they are recognised by their fields:
//   "bpe_tokenizer":           "pretokenizer_regex" + "cases" + vocab.json/merges.txt: every tricky string's
//                              ids, tokens and decodes (with and without special tokens), from vocab.json +
//                              merges.txt and again from tokenizer.json, plus the ChatML template example;
//   "sentencepiece_tokenizer": "models" + "oracles": per .model file and string, python sentencepiece
//                              ids/pieces/decode and slow LlamaTokenizer ids with legacy true and false.
#include <ATen/ATen.h>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "tokenizers/bpe_tokenizer.hpp"
#include "tokenizers/chat_template.hpp"
#include "tokenizers/sentencepiece_tokenizer.hpp"

namespace pictor::dev {

namespace {

at::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids), at::TensorOptions().dtype(at::kLong));
}

std::vector<int64_t> ids_of(const json& v, const std::string& what) {
  if (!v.is_array()) throw Error("case.json: '" + what + "' is not a list of ids");
  return v.get<std::vector<int64_t>>();
}

bool is_bpe_case(const CaseDir& c) {
  return c.spec.contains("pretokenizer_regex") && c.spec.contains("cases") &&
         std::filesystem::exists(c.dir / "vocab.json") && std::filesystem::exists(c.dir / "merges.txt");
}

void run_bpe_case(const CaseDir& c, ConformReport& report) {
  const auto from_files = tokenizers::BpeTokenizer::load_vocab_merges(c.dir);
  const bool has_json = std::filesystem::exists(c.dir / "tokenizer.json");
  const auto from_json =
      has_json ? tokenizers::BpeTokenizer::load_tokenizer_json(c.dir / "tokenizer.json") : from_files;
  const json& cases = c.spec.at("cases");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const json& k = cases[i];
    const std::string text = k.at("text").get<std::string>();
    const std::string tag = "case[" + std::to_string(i) + "] " + json(text).dump();
    const auto expected = ids_of(k.at("ids"), "ids");
    const auto ids = from_files.encode(text);
    report.exact(tag + " ids", ids_tensor(ids), ids_tensor(expected));
    if (has_json) report.exact(tag + " ids (tokenizer.json)", ids_tensor(from_json.encode(text)), ids_tensor(expected));
    report.check(tag + " tokens", from_files.tokenize(text) == k.at("tokens").get<std::vector<std::string>>());
    report.check(tag + " decoded", from_files.decode(expected) == k.at("decoded").get<std::string>());
    report.check(tag + " decoded_skip_special",
                 from_files.decode(expected, true) == k.at("decoded_skip_special").get<std::string>());
  }
  if (c.spec.contains("chat_template_example")) {
    const json& ex = c.spec.at("chat_template_example");
    const auto tmpl = tokenizers::ChatTemplate::load(c.dir);
    const std::string rendered = tmpl.render(ex.at("messages"), ex.value("add_generation_prompt", false));
    report.check("chat_template_example rendered", rendered == ex.at("rendered").get<std::string>());
    report.exact("chat_template_example ids", ids_tensor(from_files.encode(rendered)),
                 ids_tensor(ids_of(ex.at("ids"), "ids")));
  }
}

bool is_sentencepiece_case(const CaseDir& c) {
  return c.spec.contains("models") && c.spec.contains("oracles") && c.spec.at("models").is_object();
}

void run_sentencepiece_case(const CaseDir& c, ConformReport& report) {
  for (const auto& [name, model] : c.spec.at("models").items()) {
    const auto file = c.dir / model.at("model_file").get<std::string>();
    const auto legacy = tokenizers::SentencePieceTokenizer::load(file, {true});
    const auto modern = tokenizers::SentencePieceTokenizer::load(file, {false});
    const json& cases = model.at("cases");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const json& k = cases[i];
      const std::string text = k.at("text").get<std::string>();
      const std::string tag = name + " case[" + std::to_string(i) + "] " + json(text).dump();
      const auto sp_ids = ids_of(k.at("sentencepiece_encode"), "sentencepiece_encode");
      report.exact(tag + " sentencepiece_encode", ids_tensor(legacy.sp_encode(text)), ids_tensor(sp_ids));
      report.check(tag + " sentencepiece_pieces",
                   legacy.sp_encode_pieces(text) == k.at("sentencepiece_pieces").get<std::vector<std::string>>());
      report.check(tag + " sentencepiece_decode",
                   legacy.sp_decode(sp_ids) == k.at("sentencepiece_decode").get<std::string>());
      report.exact(tag + " llama_legacy_true_ids", ids_tensor(legacy.encode(text)),
                   ids_tensor(ids_of(k.at("llama_legacy_true_ids"), "llama_legacy_true_ids")));
      const auto expected = ids_of(k.at("llama_legacy_false_ids"), "llama_legacy_false_ids");
      report.exact(tag + " llama_legacy_false_ids", ids_tensor(modern.encode(text)), ids_tensor(expected));
      std::vector<std::string> tokens;
      for (const auto id : expected) tokens.push_back(modern.id_to_token(id));
      report.check(tag + " llama_legacy_false_tokens",
                   tokens == k.at("llama_legacy_false_tokens").get<std::vector<std::string>>());
      report.check(tag + " llama_legacy_false_decode_skip_special",
                   modern.decode(expected, true) == k.at("llama_legacy_false_decode_skip_special").get<std::string>());
    }
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM("bpe_tokenizer", is_bpe_case, run_bpe_case);
PICTOR_REGISTER_CONFORM("sentencepiece_tokenizer", is_sentencepiece_case, run_sentencepiece_case);

}  // namespace pictor::dev
