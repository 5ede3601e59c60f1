#include "models/clip_text.hpp"

#include <ATen/ATen.h>

#include <limits>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"

namespace fs = std::filesystem;

namespace pictor::models {

namespace {
bool is_text_architecture(const std::string& a) {
  return a == "CLIPTextModel" || a == "CLIPTextModelWithProjection";
}

// The fields shared by flat and nested text configs.
ClipTextConfig parse_text_fields(const JsonConfig& cfg, bool sizes_required) {
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "clip_text_model")
    throw Unsupported(cfg.source() + ": field 'model_type': '" + cfg.get<std::string>("model_type") +
                      "' (expected 'clip_text_model')");

  ClipTextConfig c;
  // Required sizes in a flat config; CLIPTextConfig's defaults (the struct's initial values) in a nested one.
  auto size = [&](const char* key, int64_t fallback) {
    return sizes_required ? cfg.positive(key) : cfg.positive(key, fallback);
  };
  c.vocab_size = size("vocab_size", c.vocab_size);
  c.hidden_size = size("hidden_size", c.hidden_size);
  c.intermediate_size = size("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = size("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = size("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = size("max_position_embeddings", c.max_position_embeddings);
  cfg.require_divides("num_attention_heads", c.num_attention_heads, "hidden_size", c.hidden_size);
  c.hidden_act = cfg.get<std::string>("hidden_act", c.hidden_act);
  c.activation = nn::parse_activation(c.hidden_act, cfg.source() + ": field 'hidden_act'");
  c.layer_norm_eps = cfg.get<double>("layer_norm_eps", c.layer_norm_eps);
  if (!(c.layer_norm_eps > 0)) cfg.fail("layer_norm_eps", "must be positive");
  c.eos_token_id = cfg.get<int64_t>("eos_token_id", c.eos_token_id);
  c.projection_dim = cfg.get<int64_t>("projection_dim", c.projection_dim);
  return c;
}
}  // namespace

ClipTextConfig ClipTextConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("architectures")) {
    const auto archs = cfg.get<std::vector<std::string>>("architectures");
    bool ok = false;
    for (const auto& a : archs) ok = ok || is_text_architecture(a);
    if (!ok)
      throw Unsupported(src + ": field 'architectures': " + cfg.raw().at("architectures").dump() +
                        " is not a CLIP text encoder (expected CLIPTextModel or CLIPTextModelWithProjection)");
  }
  return parse_text_fields(cfg, /*sizes_required=*/true);
}

ClipTextConfig ClipTextConfig::from_json(const JsonConfig& cfg, const std::string& nested_key) {
  if (!cfg.has(nested_key) || !cfg.raw().at(nested_key).is_object())
    throw Error(cfg.source() + ": missing object '" + nested_key + "' (the text tower's config)");
  return parse_text_fields(JsonConfig(cfg.raw().at(nested_key), cfg.source() + " (" + nested_key + ")"),
                           /*sizes_required=*/false);
}

ClipEncoderConfig ClipTextConfig::encoder_config() const {
  return {hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, activation, layer_norm_eps};
}

ClipTextModel::ClipTextModel(const ClipTextConfig& cfg, nn::ParamSource& params, const std::string& prefix)
    : config_(cfg),
      device_(params.device()),
      token_embedding_(params, nn::join(prefix, "embeddings.token_embedding"), cfg.vocab_size, cfg.hidden_size),
      position_embedding_(params, nn::join(prefix, "embeddings.position_embedding"), cfg.max_position_embeddings,
                          cfg.hidden_size),
      encoder_(cfg.encoder_config(), params, nn::join(prefix, "encoder")),
      final_layer_norm_(params, nn::join(prefix, "final_layer_norm"), cfg.hidden_size, cfg.layer_norm_eps) {}

std::unique_ptr<ClipTextModel> ClipTextModel::load(const fs::path& dir, c10::Device device) {
  const ClipTextConfig cfg = ClipTextConfig::from_json(JsonConfig::load(dir / "config.json"));
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<ClipTextModel>(cfg, params);
  params.refuse_unused("a CLIP text encoder", [](const std::string& name) {
    return name == "text_model.embeddings.position_ids" || name == "text_projection.weight";
  });
  return model;
}

at::Tensor clip_causal_mask(int64_t T, const at::TensorOptions& options) {
  at::Tensor full = at::full({T, T}, std::numeric_limits<float>::lowest(), options);
  return at::triu(full, 1).view({1, 1, T, T});
}

ClipTextModel::Output ClipTextModel::forward(const at::Tensor& input_ids, bool want_hidden_states) const {
  return forward(input_ids, at::Tensor(), want_hidden_states);
}

ClipTextModel::Output ClipTextModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                             bool want_hidden_states) const {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(0) < 1 ||
      !at::isIntegralType(input_ids.scalar_type(), /*includeBool=*/false))
    throw Error("CLIP text encoder: input_ids must be a [batch, tokens] integer tensor");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (T < 1 || T > config_.max_position_embeddings)
    throw Error("CLIP text encoder: " + std::to_string(T) + " tokens, but the model has " +
                std::to_string(config_.max_position_embeddings) + " positions (max_position_embeddings)");
  at::Tensor ids = input_ids.to(device_, at::kLong);
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab_size)
    throw Error("CLIP text encoder: token id " + std::to_string(lo < 0 ? lo : hi) + " outside the vocabulary [0, " +
                std::to_string(config_.vocab_size) + ")");

  at::Tensor positions = at::arange(T, ids.options());
  at::Tensor h = token_embedding_(ids) + position_embedding_(positions);
  at::Tensor mask = clip_causal_mask(T, h.options());
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(0) != B || attention_mask.size(1) != T)
      throw Error("CLIP text encoder: attention_mask must be [" + std::to_string(B) + ", " + std::to_string(T) +
                  "] like input_ids");
    // transformers adds a second finfo.min for padded keys; clamping keeps it finite, which gives the
    // same softmax (exp underflows to 0 either way) and never a NaN for rows that see only padding.
    const at::Tensor padded = attention_mask.to(h.device()).eq(0).view({B, 1, 1, T});
    mask = at::where(padded, at::full({}, std::numeric_limits<float>::lowest(), h.options()), mask);
  }
  Output out;
  h = encoder_.forward(h, mask, want_hidden_states ? &out.hidden_states : nullptr);
  out.last_hidden_state = final_layer_norm_(h);

  // transformers keeps argmax(input_ids) for the legacy eos_token_id == 2 configs (PR #24773); newer
  // configs pool at the first occurrence of the real end-of-text id.
  at::Tensor eos_pos =
      config_.eos_token_id == 2 ? ids.argmax(-1) : ids.eq(config_.eos_token_id).to(at::kInt).argmax(-1);
  const int64_t C = config_.hidden_size;
  out.pooler_output = out.last_hidden_state.gather(1, eos_pos.view({B, 1, 1}).expand({B, 1, C})).squeeze(1);
  return out;
}

at::Tensor ClipTextModel::final_layer_norm(const at::Tensor& x) const {
  return final_layer_norm_(x);
}

}  // namespace pictor::models
