#include "models/llama.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "nn/attention.hpp"
#include "nn/decode_kernels.hpp"

namespace fs = std::filesystem;

namespace pictor::models {

namespace {

std::vector<int64_t> id_list(const JsonConfig& cfg, const std::string& key) {
  const json& v = cfg.raw().at(key);
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (v.is_array()) return cfg.get<std::vector<int64_t>>(key);
  cfg.fail(key, "must be an integer or a list of integers");
}

// rope_scaling null, or an explicit {"rope_type": "default"}, is plain RoPE; every scaled variant
// (linear, dynamic, yarn, llama3, ...) changes the frequencies and is refused rather than ignored.
void check_rope_scaling(const JsonConfig& cfg) {
  if (!cfg.has("rope_scaling")) return;
  const json& r = cfg.raw().at("rope_scaling");
  if (r.is_object() && r.size() == 1) {
    for (const char* key : {"rope_type", "type"})
      if (r.contains(key) && r[key] == "default") return;
  }
  throw Unsupported(cfg.source() + ": field 'rope_scaling': " + r.dump() +
                    " (only null, i.e. unscaled rotary embeddings, is implemented)");
}

void check_input(const at::Tensor& input, int64_t hidden) {
  if (!input.defined() || input.size(0) < 1) throw Error("Llama: empty input");
  const bool ids = at::isIntegralType(input.scalar_type(), /*includeBool=*/false);
  if (ids && input.dim() != 2) throw Error("Llama: input_ids must be [batch, tokens]");
  if (!ids && (input.dim() != 3 || input.size(2) != hidden))
    throw Error("Llama: inputs_embeds must be [batch, tokens, " + std::to_string(hidden) + "]");
  if (input.size(1) < 1) throw Error("Llama: input has no tokens");
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "llama")
    throw Unsupported(src + ": field 'model_type': '" + cfg.get<std::string>("model_type") + "' (expected 'llama')");
  check_rope_scaling(cfg);
  if (cfg.has("partial_rotary_factor") && cfg.get<double>("partial_rotary_factor") != 1.0)
    throw Unsupported(src + ": field 'partial_rotary_factor': only 1.0 is implemented");

  LlamaConfig c;
  c.vocab_size = cfg.positive("vocab_size", c.vocab_size);
  c.hidden_size = cfg.positive("hidden_size", c.hidden_size);
  c.intermediate_size = cfg.positive("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg.positive("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg.positive("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = cfg.positive("num_key_value_heads", c.num_attention_heads);
  cfg.require_divides("num_key_value_heads", c.num_key_value_heads, "num_attention_heads", c.num_attention_heads);
  if (cfg.has("head_dim")) {
    c.head_dim = cfg.positive("head_dim", 0);
  } else {
    // Without head_dim the heads split hidden_size.
    cfg.require_divides("num_attention_heads", c.num_attention_heads, "hidden_size", c.hidden_size);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0)
    cfg.fail("head_dim", "must be even for rotary embeddings, got " + std::to_string(c.head_dim));
  c.rms_norm_eps = cfg.get<double>("rms_norm_eps", c.rms_norm_eps);
  if (!(c.rms_norm_eps > 0)) cfg.fail("rms_norm_eps", "must be positive");
  c.rope_theta = cfg.get<double>("rope_theta", c.rope_theta);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) cfg.fail("rope_theta", "must be positive");
  c.max_position_embeddings = cfg.positive("max_position_embeddings", c.max_position_embeddings);
  c.tie_word_embeddings = cfg.get<bool>("tie_word_embeddings", c.tie_word_embeddings);
  c.hidden_act = cfg.get<std::string>("hidden_act", c.hidden_act);
  c.activation = nn::parse_activation(c.hidden_act, src + ": field 'hidden_act'");
  c.attention_bias = cfg.get<bool>("attention_bias", c.attention_bias);
  c.mlp_bias = cfg.get<bool>("mlp_bias", c.mlp_bias);
  c.bos_token_id = cfg.has("bos_token_id") ? std::optional<int64_t>(cfg.get<int64_t>("bos_token_id")) : std::nullopt;
  c.eos_token_ids = cfg.has("eos_token_id") ? id_list(cfg, "eos_token_id") : std::vector<int64_t>{};
  if (cfg.has("pad_token_id")) c.pad_token_id = cfg.get<int64_t>("pad_token_id");
  return c;
}

LlamaConfig LlamaConfig::from_json(const JsonConfig& cfg, const std::string& nested_key) {
  if (!cfg.has(nested_key) || !cfg.raw().at(nested_key).is_object())
    throw Error(cfg.source() + ": missing object '" + nested_key + "' (the language model's config)");
  return from_json(JsonConfig(cfg.raw().at(nested_key), cfg.source() + " (" + nested_key + ")"));
}

RmsNorm::RmsNorm(nn::ParamSource& p, const std::string& prefix, int64_t dim, double eps_) : eps(eps_) {
  weight = p.get(nn::join(prefix, "weight"), {dim}, nn::Init::NormWeight);
}

at::Tensor RmsNorm::operator()(const at::Tensor& x) const {
  if (at::Tensor fused = nn::decode_kernels::rms_norm(x, weight, eps); fused.defined()) return fused;
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

LlamaModel::LlamaModel(const LlamaConfig& cfg, nn::ParamSource& params, const std::string& model_prefix,
                       const std::string& lm_head_prefix)
    : config_(cfg),
      device_(params.device()),
      embed_tokens_(params, nn::join(model_prefix, "embed_tokens"), cfg.vocab_size, cfg.hidden_size),
      rope_(cfg.head_dim, cfg.rope_theta, params.device()) {
  const int64_t C = cfg.hidden_size, H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, D = cfg.head_dim;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string p = nn::join(model_prefix, "layers." + std::to_string(i));
    Layer l;
    l.input_layernorm = RmsNorm(params, p + ".input_layernorm", C, cfg.rms_norm_eps);
    nn::Linear q(params, p + ".self_attn.q_proj", C, H * D, cfg.attention_bias);
    nn::Linear k(params, p + ".self_attn.k_proj", C, KV * D, cfg.attention_bias);
    nn::Linear v(params, p + ".self_attn.v_proj", C, KV * D, cfg.attention_bias);
    l.qkv = nn::join_outputs({&q, &k, &v});
    l.o_proj = nn::Linear(params, p + ".self_attn.o_proj", H * D, C, cfg.attention_bias);
    l.post_attention_layernorm = RmsNorm(params, p + ".post_attention_layernorm", C, cfg.rms_norm_eps);
    nn::Linear gate(params, p + ".mlp.gate_proj", C, cfg.intermediate_size, cfg.mlp_bias);
    nn::Linear up(params, p + ".mlp.up_proj", C, cfg.intermediate_size, cfg.mlp_bias);
    l.gate_up = nn::join_outputs({&gate, &up});
    l.down_proj = nn::Linear(params, p + ".mlp.down_proj", cfg.intermediate_size, C, cfg.mlp_bias);
    if (cfg.int8_weights) quantize_layer(l);
    layers_.push_back(std::move(l));
  }
  norm_ = RmsNorm(params, nn::join(model_prefix, "norm"), C, cfg.rms_norm_eps);
  lm_head_.weight = cfg.tie_word_embeddings
                        ? embed_tokens_.weight
                        : params.get(nn::join(lm_head_prefix, "weight"), {cfg.vocab_size, C}, nn::Init::FanIn);
  if (cfg.int8_weights) quantize_int8();  // the layers are done; this takes the lm_head
}

std::unique_ptr<LlamaModel> LlamaModel::load(const fs::path& dir, c10::Device device, bool int8) {
  LlamaConfig cfg = LlamaConfig::from_json(JsonConfig::load(dir / "config.json"));
  cfg.int8_weights = int8;
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<LlamaModel>(cfg, params);
  // Saved rotary buffers and a tied model's redundant lm_head are expected.
  params.refuse_unused("a Llama model", [&](const std::string& name) {
    return name.ends_with("rotary_emb.inv_freq") || (cfg.tie_word_embeddings && name == "lm_head.weight");
  });
  return model;
}

at::Tensor llama_attention_mask(const at::Tensor& attention_mask, int64_t past, int64_t T,
                                const at::TensorOptions& options) {
  const int64_t S = past + T;
  if (!attention_mask.defined() && T == 1) return {};
  const auto long_opts = options.dtype(at::kLong);
  at::Tensor query_pos = at::arange(past, S, long_opts).unsqueeze(1);       // [T, 1]
  at::Tensor allowed = at::arange(S, long_opts).unsqueeze(0) <= query_pos;  // [T, S]
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(1) != S)
      throw Error("Llama: attention_mask must be [batch, " + std::to_string(S) + "] (cached + new tokens), got " +
                  std::to_string(attention_mask.size(-1)) + " columns");
    allowed = allowed.unsqueeze(0) & attention_mask.to(options.device()).ne(0).unsqueeze(1);  // [B, T, S]
  } else {
    allowed = allowed.unsqueeze(0);
  }
  return at::zeros(allowed.sizes(), options)
      .masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest())
      .unsqueeze(1);
}

at::Tensor LlamaModel::embed(const at::Tensor& input_ids) const {
  at::Tensor ids = input_ids.to(device_, at::kLong);
  if (ids.numel()) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= config_.vocab_size)
      throw Error("Llama: token id " + std::to_string(lo < 0 ? lo : hi) + " outside the vocabulary [0, " +
                  std::to_string(config_.vocab_size) + ")");
  }
  return embed_tokens_(ids);
}

at::Tensor LlamaModel::attention(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& mask,
                                 const at::Tensor& cos, const at::Tensor& sin, KVCache* cache) const {
  const int64_t B = x.size(0), T = x.size(1), H = config_.num_attention_heads, KV = config_.num_key_value_heads,
                D = config_.head_dim, group = H / KV;
  const at::Tensor qkv = layer.qkv(x);  // [B, T, (H + 2 KV) D]: q, k and v side by side
  at::Tensor q = RotaryEmbedding::apply_to_projection(qkv.narrow(2, 0, H * D).view({B, T, H, D}), cos, sin);
  at::Tensor k = RotaryEmbedding::apply_to_projection(qkv.narrow(2, H * D, KV * D).view({B, T, KV, D}), cos, sin);
  at::Tensor v = qkv.narrow(2, (H + KV) * D, KV * D).view({B, T, KV, D}).transpose(1, 2);
  if (cache) std::tie(k, v) = cache->append(index, k, v);
  const int64_t S = k.size(2);
  // Grouped-query attention without copying the keys per query head: the `group` query heads that share
  // a key/value head are stacked along the query axis ([B, KV, group * T, D]), and the mask repeats.
  at::Tensor qg = q.reshape({B, KV, group * T, D});
  at::Tensor m;
  if (mask.defined())
    m = mask.unsqueeze(2).expand({mask.size(0), 1, group, T, S}).reshape({mask.size(0), 1, group * T, S});
  at::Tensor o = nn::attention(qg, k, v, m, 1.0 / std::sqrt(static_cast<double>(D)));
  o = o.reshape({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
  return layer.o_proj(o);
}

at::Tensor LlamaModel::decode(const at::Tensor& input, const at::Tensor& attention_mask, const at::Tensor& position_ids,
                              KVCache* cache, std::vector<at::Tensor>* hidden_states) const {
  check_input(input, config_.hidden_size);
  const bool ids = at::isIntegralType(input.scalar_type(), /*includeBool=*/false);
  at::Tensor h = ids ? embed(input) : input.to(device_, embed_tokens_.weight.scalar_type());
  const int64_t B = h.size(0), T = h.size(1);
  const int64_t past = cache ? cache->length() : 0;
  if (cache && cache->num_layers() > 0 && cache->keys(0).defined() && cache->keys(0).size(0) != B)
    throw Error("Llama: the KV cache holds batch " + std::to_string(cache->keys(0).size(0)) + ", input has " +
                std::to_string(B));

  at::Tensor pos = position_ids.defined() ? position_ids.to(device_, at::kLong)
                                          : at::arange(past, past + T, h.options().dtype(at::kLong)).unsqueeze(0);
  if (pos.dim() != 2 || pos.size(1) != T || (pos.size(0) != B && pos.size(0) != 1))
    throw Error("Llama: position_ids must be [batch or 1, " + std::to_string(T) + "]");
  auto [cos, sin] = rope_.tables(pos);
  const at::Tensor mask = llama_attention_mask(attention_mask, past, T, h.options());

  if (hidden_states) hidden_states->clear();
  // In place only on buffers this function allocated: h starts as the caller's input when it passes
  // embeddings, and recorded hidden states must keep their values.
  const bool in_place = !at::GradMode::is_enabled() || c10::InferenceMode::is_enabled();
  if (in_place && !ids) h = h.clone();
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (hidden_states) hidden_states->push_back(h);
    const Layer& l = layers_[i];
    const at::Tensor a = attention(l, static_cast<int64_t>(i), l.input_layernorm(h), mask, cos, sin, cache);
    h = in_place && !hidden_states ? h.add_(a) : h + a;
    const at::Tensor m = l.down_proj(nn::gated(l.gate_up(l.post_attention_layernorm(h)), config_.activation));
    h = in_place && !hidden_states ? h.add_(m) : h + m;
  }
  h = norm_(h);
  if (hidden_states) hidden_states->push_back(h);
  return h;
}

at::Tensor LlamaModel::lm_head(const at::Tensor& hidden) const {
  return lm_head_(hidden);
}

void LlamaModel::quantize_layer(Layer& l) {
  for (nn::Linear* lin : {&l.qkv, &l.o_proj, &l.gate_up, &l.down_proj}) lin->quantize_int8();
}

int64_t LlamaModel::quantize_int8() {
  if (quantized_int8()) return 0;
  for (Layer& l : layers_) quantize_layer(l);
  lm_head_.quantize_int8();  // tied: an int8 copy; the fp32 table stays for the embedding lookup
  return int8_saved_bytes();
}

int64_t LlamaModel::int8_saved_bytes() const {
  // fp32: 4 bytes per weight; int8: 1 byte per weight plus a 4-byte scale per row.
  auto saved = [](const nn::Linear& l) {
    return l.int8.defined() ? 3 * l.int8.values.numel() - 4 * l.int8.values.size(0) : int64_t(0);
  };
  int64_t total = 0;
  for (const Layer& l : layers_)
    for (const nn::Linear* lin : {&l.qkv, &l.o_proj, &l.gate_up, &l.down_proj}) total += saved(*lin);
  if (!lm_head_.int8.defined()) return total;
  // A tied lm_head's int8 form is a copy next to the embedding table it shares: it costs, not saves.
  return total + (config_.tie_word_embeddings ? -(lm_head_.int8.values.numel() + 4 * lm_head_.int8.values.size(0))
                                              : saved(lm_head_));
}

at::Tensor LlamaModel::forward(const at::Tensor& input, const at::Tensor& attention_mask,
                               const at::Tensor& position_ids, KVCache* cache, std::vector<at::Tensor>* hidden_states,
                               bool last_logits_only) const {
  at::Tensor h = decode(input, attention_mask, position_ids, cache, hidden_states);
  if (last_logits_only) h = h.narrow(1, h.size(1) - 1, 1);
  return lm_head(h);
}

StepFn LlamaModel::step_function(KVCache& cache) const {
  return [this, &cache](const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& positions) {
    return forward(ids, mask, positions, &cache, nullptr, /*last_logits_only=*/true).squeeze(1);
  };
}

}  // namespace pictor::models
