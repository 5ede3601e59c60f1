// Conformance kind "clip_tokenizer": the golden tokenizer case (case.json "case" mentions "tokenizer" and
// the folder holds vocab.json/merges.txt) lists prompts and the ids transformers' CLIPTokenizer gives
// them with ftfy installed, for SD1 (pad = EOS) and SD2 (pad token "!" = id 0). Every row is compared
// exactly; rows the reference marks as known differences are still reported as ordinary checks.
#include <ATen/ATen.h>

#include <cstdio>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "tokenizers/clip_tokenizer.hpp"

namespace pictor::dev {

namespace {

bool is_tokenizer_case(const CaseDir& c) {
  return case_title_has(c, "tokenizer") && std::filesystem::exists(c.dir / "vocab.json") &&
         std::filesystem::exists(c.dir / "merges.txt");
}

// Prompt NN: inputs.safetensors "prompt.NN" (UTF-8 bytes as uint8), else case.json "prompts"[NN].
std::string prompt_of(const CaseDir& c, int64_t row) {
  char name[32];
  std::snprintf(name, sizeof(name), "prompt.%02lld", static_cast<long long>(row));
  if (c.inputs.has(name)) {
    const at::Tensor bytes = c.inputs.get(name).contiguous();
    if (bytes.scalar_type() != at::kByte) throw Error(c.dir.string() + ": input " + name + " is not uint8");
    return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
  }
  const auto& prompts = c.spec.contains("prompts") ? c.spec.at("prompts") : json();
  if (!prompts.is_array() || row >= static_cast<int64_t>(prompts.size()) || !prompts.at(row).is_string())
    throw Error(c.dir.string() + ": no input " + name + " and no case.json prompts[" + std::to_string(row) + "]");
  return prompts.at(row).get<std::string>();
}

at::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids), at::TensorOptions().dtype(at::kLong));
}

void run_tokenizer_case(const CaseDir& c, ConformReport& report) {
  const auto sd1 = tokenizers::ClipTokenizer::load(c.dir);
  auto sd2 = sd1;
  sd2.set_pad_token("!");

  const struct {
    const char* output;
    const tokenizers::ClipTokenizer* tok;
  } variants[] = {{"hf_ftfy_sd1_ids", &sd1}, {"hf_ftfy_sd2_ids", &sd2}};

  for (const auto& v : variants) {
    if (!c.outputs.has(v.output)) throw Error(c.dir.string() + ": outputs.safetensors has no '" + v.output + "'");
    const at::Tensor expected = c.outputs.get(v.output);
    if (expected.dim() != 2) throw Error(c.dir.string() + ": output " + v.output + " is not [prompts, length]");
    const int max_len = static_cast<int>(expected.size(1));
    for (int64_t row = 0; row < expected.size(0); ++row) {
      const auto ids = v.tok->encode_padded(prompt_of(c, row), max_len);
      report.exact(std::string(v.output) + "[" + std::to_string(row) + "]", ids_tensor(ids), expected[row]);
    }
  }

  // Untruncated length [BOS] + ids + [EOS] (openai's SimpleTokenizer, same BPE as the SD1 variant).
  if (c.outputs.has("openai_untruncated_len")) {
    const at::Tensor expected = c.outputs.get("openai_untruncated_len");
    std::vector<int64_t> lengths;
    for (int64_t row = 0; row < expected.size(0); ++row)
      lengths.push_back(static_cast<int64_t>(sd1.encode(prompt_of(c, row)).size()) + 2);
    report.exact("openai_untruncated_len", ids_tensor(lengths), expected);
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM("clip_tokenizer", is_tokenizer_case, run_tokenizer_case);

}  // namespace pictor::dev
