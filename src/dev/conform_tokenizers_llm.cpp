// Conformance kind for the language-model BPE tokenizer (vlm/tokenizer_bpe). Its case.json has no "case"
// title, so it is recognised by its fields:
//   "bpe_tokenizer":           "pretokenizer_regex" + "cases" + vocab.json/merges.txt: every tricky string's
//                              ids, tokens and decodes (with and without special tokens), from vocab.json +
//                              merges.txt and again from tokenizer.json, plus the ChatML template example;
#include <ATen/ATen.h>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "tokenizers/bpe_tokenizer.hpp"
#include "tokenizers/chat_template.hpp"

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

}  // namespace

PICTOR_REGISTER_CONFORM("bpe_tokenizer", is_bpe_case, run_bpe_case);

}  // namespace pictor::dev
