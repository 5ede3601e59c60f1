#include "models/text_generation.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace pictor::models {

namespace {

std::vector<int64_t> id_list(const JsonConfig& cfg, const std::string& key) {
  const json& v = cfg.raw().at(key);
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (v.is_array()) return cfg.get<std::vector<int64_t>>(key);
  cfg.fail(key, "must be an integer or a list of integers");
}

// cumsum(mask) - 1 with padding positions set to 1, as transformers' prepare_inputs_for_generation.
at::Tensor positions_from_mask(const at::Tensor& mask) {
  return (mask.cumsum(-1) - 1).masked_fill(mask.eq(0), 1);
}

bool contains_any(const std::string& text, const std::vector<std::string>& needles) {
  for (const auto& s : needles)
    if (!s.empty() && text.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

GenerationConfig GenerationConfig::from_json(const JsonConfig& cfg) {
  GenerationConfig g;
  if (cfg.has("num_beams") && cfg.get<int64_t>("num_beams") != 1)
    throw Unsupported(cfg.source() + ": field 'num_beams': beam search (only num_beams = 1 is implemented)");
  if (cfg.has("eos_token_id")) g.eos_token_ids = id_list(cfg, "eos_token_id");
  if (cfg.has("pad_token_id")) g.pad_token_id = cfg.get<int64_t>("pad_token_id");
  g.do_sample = cfg.get<bool>("do_sample", g.do_sample);
  g.temperature = cfg.get<double>("temperature", g.temperature);
  g.top_k = cfg.get<int64_t>("top_k", g.top_k);
  g.top_p = cfg.get<double>("top_p", g.top_p);
  g.repetition_penalty = cfg.get<double>("repetition_penalty", g.repetition_penalty);
  g.max_new_tokens = cfg.get<int64_t>("max_new_tokens", g.max_new_tokens);
  try {
    g.validate();
  } catch (const Error& e) {
    throw Error(cfg.source() + ": " + e.what());
  }
  return g;
}

void GenerationConfig::validate() const {
  auto bad = [](const std::string& field, const std::string& problem) {
    throw Error("generation config: field '" + field + "': " + problem);
  };
  if (max_new_tokens < 0) bad("max_new_tokens", "must be >= 0, got " + std::to_string(max_new_tokens));
  if (!(temperature >= 0) || !std::isfinite(temperature))
    bad("temperature", "must be a finite value >= 0, got " + std::to_string(temperature));
  if (top_k < 0) bad("top_k", "must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0 && top_p <= 1)) bad("top_p", "must be in (0, 1], got " + std::to_string(top_p));
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
    bad("repetition_penalty", "must be a finite value > 0, got " + std::to_string(repetition_penalty));
}

at::Tensor process_logits(const at::Tensor& logits, const at::Tensor& sequences, const GenerationConfig& config) {
  at::Tensor scores = logits.to(at::kFloat);
  if (config.repetition_penalty != 1.0) {
    // A repeated token's logit is divided by the penalty when positive and multiplied when negative.
    const at::Tensor seq = sequences.to(scores.device(), at::kLong);
    at::Tensor seen = scores.gather(1, seq);
    seen = at::where(seen < 0, seen * config.repetition_penalty, seen / config.repetition_penalty);
    scores = scores.scatter(1, seq, seen);
  }
  if (!config.do_sample || config.temperature == 0) return scores;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (config.temperature != 1.0) scores = scores / config.temperature;
  if (config.top_k > 0) {
    const int64_t k = std::min<int64_t>(config.top_k, scores.size(-1));
    at::Tensor kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);
    scores = scores.masked_fill(scores < kth, neg_inf);  // ties with the k-th value are kept
  }
  if (config.top_p < 1.0) {
    // Drop the least likely tokens whose cumulative probability stays within 1 - top_p; the most
    // likely token always survives.
    auto [sorted, order] = scores.sort(-1, /*descending=*/false);
    at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove = cumulative <= (1.0 - config.top_p);
    remove.narrow(-1, remove.size(-1) - 1, 1).fill_(false);
    scores = scores.masked_fill(remove.scatter(-1, order, remove), neg_inf);
  }
  return scores;
}

GenerationResult generate(const StepFn& step, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          const GenerationConfig& config, const GenerationCallbacks& callbacks, bool keep_step_logits) {
  config.validate();
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(0) < 1 || input_ids.size(1) < 1 ||
      !at::isIntegralType(input_ids.scalar_type(), /*includeBool=*/false))
    throw Error("generate: input_ids must be a non-empty [batch, tokens] integer tensor");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const auto device = input_ids.device();
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(device, at::kLong) : at::ones({B, T}, long_opts);
  if (mask.sizes() != input_ids.sizes()) throw Error("generate: attention_mask must have the shape of input_ids");
  if (!config.stop_strings.empty() && !callbacks.decode)
    throw Error("generate: stop_strings need a decode callback to turn tokens into text");

  std::optional<int64_t> pad = config.pad_token_id;
  if (!pad && !config.eos_token_ids.empty()) pad = config.eos_token_ids.front();
  if (!pad && !config.stop_strings.empty())
    throw Error("generate: stop_strings need a pad_token_id (or an EOS id) to fill the rows that stop");

  // Sequences live in a buffer sized for the longest outcome, so no step re-concatenates them.
  at::Tensor buffer = at::empty({B, T + config.max_new_tokens}, long_opts);
  buffer.narrow(1, 0, T).copy_(input_ids);
  const at::Tensor eos = at::tensor(config.eos_token_ids, at::TensorOptions().dtype(at::kLong)).to(device);
  at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(config.seed);
  const bool sampling = config.do_sample && config.temperature > 0;

  GenerationResult result;
  result.finished.assign(static_cast<size_t>(B), false);
  at::Tensor unfinished = at::ones({B}, long_opts);
  std::vector<std::vector<int64_t>> new_tokens(static_cast<size_t>(B));
  at::Tensor step_input = input_ids.to(at::kLong);
  int64_t n = 0;
  while (n < config.max_new_tokens) {
    const at::Tensor positions =
        positions_from_mask(mask).narrow(1, mask.size(1) - step_input.size(1), step_input.size(1));
    at::Tensor logits = step(step_input, mask, positions);
    if (!logits.defined() || logits.dim() != 2 || logits.size(0) != B)
      throw Error("generate: the step function must return [batch, vocab] logits");
    if (keep_step_logits) result.step_logits.push_back(logits.detach());
    at::Tensor scores = process_logits(logits, buffer.narrow(1, 0, T + n), config);

    at::Tensor next;
    if (sampling)
      next = at::multinomial(scores.softmax(-1).to(at::kCPU), 1, /*replacement=*/false, rng).squeeze(1);
    else
      next = scores.argmax(-1);
    next = next.to(device, at::kLong);
    if (pad) next = next * unfinished + (1 - unfinished) * *pad;
    buffer.select(1, T + n).copy_(next);
    ++n;

    const at::Tensor next_cpu = next.to(at::kCPU);
    const at::Tensor was_unfinished = unfinished.to(at::kCPU);
    if (eos.numel()) unfinished = unfinished * at::logical_not(at::isin(next, eos)).to(at::kLong);
    bool keep_going = true;
    for (int64_t r = 0; r < B; ++r) {
      if (!was_unfinished[r].item<int64_t>()) continue;
      const int64_t tok = next_cpu[r].item<int64_t>();
      new_tokens[static_cast<size_t>(r)].push_back(tok);
      if (callbacks.on_token && !callbacks.on_token(static_cast<int>(r), tok)) keep_going = false;
      if (!config.stop_strings.empty() &&
          contains_any(callbacks.decode(static_cast<int>(r), new_tokens[static_cast<size_t>(r)]), config.stop_strings))
        unfinished[r] = 0;
    }
    mask = at::cat({mask, at::ones({B, 1}, long_opts)}, 1);
    step_input = next.unsqueeze(1);
    if (!keep_going) {
      result.stopped_by_callback = true;
      break;
    }
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  const at::Tensor final_unfinished = unfinished.to(at::kCPU);
  for (int64_t r = 0; r < B; ++r) result.finished[static_cast<size_t>(r)] = final_unfinished[r].item<int64_t>() == 0;
  result.sequences = buffer.narrow(1, 0, T + n).clone();
  result.new_tokens = n;
  return result;
}

}  // namespace pictor::models
