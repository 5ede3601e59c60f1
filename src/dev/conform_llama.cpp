// Conformance for transformers' LlamaForCausalLM cases (vlm/llama_*): the case folder is the model
// folder. Besides the plain forward it checks greedy generation, step-by-step decoding through the KV
// cache (and the cache contents), a left-padded batch and EOS stopping.
#include <ATen/ATen.h>

#include <regex>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "models/kv_cache.hpp"
#include "models/llama.hpp"
#include "models/text_generation.hpp"

namespace pictor::dev {
namespace {

int64_t required_argument(const CaseDir& c, const std::string& call, const std::string& arg) {
  auto v = c.call_int_argument(call, arg);
  if (!v) throw Error((c.dir / "case.json").string() + ": calls." + call + " names no " + arg);
  return *v;
}

void check_llama(const CaseDir& c, ConformReport& rep) {
  auto model = models::LlamaModel::load(c.dir, c10::kCPU, conform_int8_decoder());
  at::InferenceMode guard;
  const auto [atol, rtol] = c.recommended_tolerance();
  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual, c.outputs.get(name), atol, rtol);
  };
  auto compare_ids = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.exact(name, actual, c.outputs.get(name));
  };

  const at::Tensor ids = c.inputs.get("input_ids");
  const int64_t T = ids.size(1);
  std::vector<at::Tensor> hidden;
  compare("logits", model->forward(ids, {}, {}, nullptr, &hidden));
  for (size_t i = 0; i < hidden.size(); ++i) compare("hidden_states." + std::to_string(i), hidden[i]);

  // Greedy generation without EOS, then with the EOS ids the case names.
  models::GenerationConfig greedy;
  greedy.max_new_tokens = c.call_int_argument("generated_ids", "max_new_tokens").value_or(12);
  auto run_generate = [&](const at::Tensor& prompt, const at::Tensor& mask, const models::GenerationConfig& g) {
    models::KVCache cache;
    cache.reserve(prompt.size(1) + g.max_new_tokens);
    return models::generate(model->step_function(cache), prompt, mask, g).sequences;
  };
  compare_ids("generated_ids", run_generate(ids, {}, greedy));
  if (c.outputs.has("generated_ids_eos_stop")) {
    models::GenerationConfig g = greedy;
    g.eos_token_ids = {required_argument(c, "generated_ids_eos_stop", "eos_token_id")};
    compare_ids("generated_ids_eos_stop", run_generate(ids, {}, g));
  }

  // Step-by-step decoding of the recorded sequence through the KV cache, as the case's step_logits call.
  if (c.outputs.has("step_logits") && c.outputs.has("generated_ids")) {
    const at::Tensor seq = c.outputs.get("generated_ids");
    const int64_t steps = c.outputs.get("step_logits").size(1);
    models::KVCache cache;
    std::vector<at::Tensor> step_logits{model->forward(ids, {}, {}, &cache, nullptr, true)};
    for (int64_t t = T; t < T + steps - 1; ++t) {
      const at::Tensor pos = at::full({1, 1}, t, at::kLong);
      step_logits.push_back(model->forward(seq.narrow(1, t, 1), {}, pos, &cache, nullptr, true));
    }
    compare("step_logits", at::cat(step_logits, 1));
    for (int64_t l = 0; l < cache.num_layers(); ++l) {
      compare("past_key." + std::to_string(l), cache.keys(l));
      compare("past_value." + std::to_string(l), cache.values(l));
    }
    compare("full_logits_generated_seq", model->forward(seq));
  }

  // Left-padded batch: logits at padding positions are don't-care, so only real tokens are compared.
  if (c.inputs.has("batch_input_ids")) {
    const at::Tensor bids = c.inputs.get("batch_input_ids"), bmask = c.inputs.get("batch_attention_mask");
    if (c.outputs.has("batch_logits")) {
      const at::Tensor real = bmask.ne(0);
      const at::Tensor logits = model->forward(bids, bmask, c.inputs.get("batch_position_ids"));
      rep.close_rel("batch_logits", logits.index({real}), c.outputs.get("batch_logits").index({real}), atol, rtol);
    }
    models::GenerationConfig g = greedy;
    g.pad_token_id =
        c.call_int_argument("batch_generated_ids", "pad_token_id").value_or(model->config().pad_token_id.value_or(0));
    compare_ids("batch_generated_ids", run_generate(bids, bmask, g));
    if (c.outputs.has("batch_generated_ids_eos_stop")) {
      g.eos_token_ids = {required_argument(c, "batch_generated_ids_eos_stop", "eos_token_id")};
      compare_ids("batch_generated_ids_eos_stop", run_generate(bids, bmask, g));
    }
  }

  // Every recorded output must have been compared: a new output in the case would otherwise pass unseen.
  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the llama checker");
  }
}

bool is_llama_case(const CaseDir& c) {
  return c.spec.contains("class") && c.spec["class"].is_string() &&
         c.spec["class"].get<std::string>().find("LlamaForCausalLM") != std::string::npos;
}

}  // namespace

PICTOR_REGISTER_CONFORM("llama", is_llama_case, check_llama);

}  // namespace pictor::dev
