#pragma once
// Autoregressive text generation as transformers' `generate` (greedy search and multinomial sampling,
// num_beams = 1), independent of the model: the model is a step function that turns new tokens into
// next-token logits and keeps its own KV cache. Batches are left-padded; rows that finish early are
// filled with the pad id while the others continue, as transformers does.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"

namespace pictor::models {

// One decoding step. The first call gets the whole prompt (`input_ids` [B, T]), later calls one new
// token per row ([B, 1]). `attention_mask` [B, past + t] covers the cached tokens and the new ones (0 at
// left padding); `position_ids` [B, t] are cumsum(mask) - 1 (1 at padding), as transformers'
// prepare_inputs_for_generation. Returns the logits of the last position [B, V].
using StepFn = std::function<at::Tensor(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                        const at::Tensor& position_ids)>;

struct GenerationConfig {
  int64_t max_new_tokens = 20;
  bool do_sample = false;
  // Sampling settings, with transformers' defaults (note top_k = 50 is active when sampling).
  // temperature == 0 means greedy decoding; top_k == 0 and top_p == 1 disable those filters.
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  // > 1 discourages tokens already in the sequence (prompt included, as transformers).
  double repetition_penalty = 1.0;
  uint64_t seed = 0;  // sampling is deterministic for a given seed
  std::vector<int64_t> eos_token_ids;
  // Fills finished rows; defaults to the first EOS id when unset (as transformers).
  std::optional<int64_t> pad_token_id;
  // A row stops once the decoded text of its new tokens contains one of these (needs
  // GenerationCallbacks::decode). The token completing the stop string is kept.
  std::vector<std::string> stop_strings;

  // Reads a generation_config.json (eos/pad ids, do_sample, temperature, top_k, top_p,
  // repetition_penalty, max_new_tokens); absent fields keep the defaults above. Unsupported decoding
  // modes (num_beams > 1, ...) throw Unsupported naming the file and field.
  static GenerationConfig from_json(const JsonConfig& cfg);
  // Throws Error naming the field when a value is out of range.
  void validate() const;
};

struct GenerationCallbacks {
  // Called for every new token of every row still generating (the EOS token included, pad fills
  // excluded), in row order within a step. Returning false stops the whole generation after this step.
  std::function<bool(int row, int64_t token)> on_token;
  // Decodes a row's new tokens to text, for stop_strings.
  std::function<std::string(int row, const std::vector<int64_t>& new_tokens)> decode;
};

struct GenerationResult {
  at::Tensor sequences;  // [B, T + n] int64: prompt followed by the n generated (or pad) tokens
  int64_t new_tokens = 0;
  std::vector<bool> finished;  // per row: stopped by EOS or a stop string
  bool stopped_by_callback = false;
  // Raw logits of each step [B, V] (only with keep_step_logits).
  std::vector<at::Tensor> step_logits;
};

// Generates from `input_ids` [B, T] with `attention_mask` [B, T] (undefined: all ones). Logits may live
// on any device; the sequences are returned on the device of input_ids.
GenerationResult generate(const StepFn& step, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          const GenerationConfig& config, const GenerationCallbacks& callbacks = {},
                          bool keep_step_logits = false);

// The logits processors of transformers in its order: repetition penalty, then (when sampling)
// temperature, top-k, top-p. `logits` [B, V] float, `sequences` [B, S] the tokens so far. Returns new
// scores with removed tokens at -inf.
at::Tensor process_logits(const at::Tensor& logits, const at::Tensor& sequences, const GenerationConfig& config);

}  // namespace pictor::models
