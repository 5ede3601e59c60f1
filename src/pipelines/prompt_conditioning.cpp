#include "pipelines/prompt_conditioning.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "tokenizers/prompt_weights.hpp"

namespace pictor::pipelines {

namespace {

// One 77-token window -> [1, 77, D] hidden states, honouring clip skip.
at::Tensor encode_chunk(const StableDiffusionModel& m, const std::vector<int64_t>& ids, const ConditioningOptions& o) {
  at::Tensor t = at::tensor(ids, at::kLong).unsqueeze(0).to(m.device);
  if (o.clip_skip <= 1) return m.text_encoder->forward(t, false).last_hidden_state;
  auto out = m.text_encoder->forward(t, true);
  const int64_t layers = static_cast<int64_t>(out.hidden_states.size()) - 1;  // [0] is the embedding output
  if (o.clip_skip > layers)
    throw Error("clip skip " + std::to_string(o.clip_skip) + " exceeds the text encoder's " + std::to_string(layers) +
                " layers");
  return m.text_encoder->final_layer_norm(out.hidden_states[static_cast<size_t>(layers - (o.clip_skip - 1))]);
}

at::Tensor encode_chunks(const StableDiffusionModel& m, std::vector<tokenizers::TokenChunk> chunks,
                         const ConditioningOptions& o, size_t min_chunks) {
  while (chunks.size() < min_chunks) chunks.push_back(tokenizers::tokenize_weighted(m.tokenizer, "").front());
  std::vector<at::Tensor> parts;
  for (const auto& c : chunks) {
    at::Tensor z = encode_chunk(m, c.ids, o);
    bool weighted = false;
    for (float w : c.weights) weighted |= (w != 1.0f);
    if (weighted) {
      // A1111: scale each token's embedding by its weight, then restore the chunk's original mean so
      // emphasis changes direction, not overall magnitude.
      at::Tensor w = at::tensor(c.weights, at::kFloat).to(z.device()).view({1, -1, 1});
      at::Tensor original_mean = z.mean();
      z = z * w;
      z = z * (original_mean / z.mean());
    }
    parts.push_back(z);
  }
  return parts.size() == 1 ? parts.front() : at::cat(parts, 1);
}

}  // namespace

at::Tensor encode_prompt(const StableDiffusionModel& m, const std::string& prompt, const ConditioningOptions& opts,
                         size_t min_chunks) {
  return encode_chunks(m, tokenizers::tokenize_weighted(m.tokenizer, prompt), opts, min_chunks);
}

PromptPair encode_prompt_pair(const StableDiffusionModel& m, const std::string& prompt, const std::string& negative,
                              const ConditioningOptions& opts) {
  auto pos = tokenizers::tokenize_weighted(m.tokenizer, prompt);
  auto neg = tokenizers::tokenize_weighted(m.tokenizer, negative);
  const size_t n = std::max(pos.size(), neg.size());
  return {encode_chunks(m, std::move(pos), opts, n), encode_chunks(m, std::move(neg), opts, n)};
}

}  // namespace pictor::pipelines
