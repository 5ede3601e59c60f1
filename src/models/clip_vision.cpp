#include "models/clip_vision.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace pictor::models {

ClipVisionConfig ClipVisionConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "clip_vision_model")
    throw Unsupported(src + ": field 'model_type': '" + cfg.get<std::string>("model_type") +
                      "' (expected 'clip_vision_model')");
  ClipVisionConfig c;
  c.image_size = cfg.positive("image_size", c.image_size);
  c.patch_size = cfg.positive("patch_size", c.patch_size);
  c.num_channels = cfg.positive("num_channels", c.num_channels);
  c.hidden_size = cfg.positive("hidden_size", c.hidden_size);
  c.intermediate_size = cfg.positive("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg.positive("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg.positive("num_attention_heads", c.num_attention_heads);
  cfg.require_divides("patch_size", c.patch_size, "image_size", c.image_size);
  cfg.require_divides("num_attention_heads", c.num_attention_heads, "hidden_size", c.hidden_size);
  c.hidden_act = cfg.get<std::string>("hidden_act", c.hidden_act);
  c.activation = nn::parse_activation(c.hidden_act, src + ": field 'hidden_act'");
  c.layer_norm_eps = cfg.get<double>("layer_norm_eps", c.layer_norm_eps);
  if (!(c.layer_norm_eps > 0)) cfg.fail("layer_norm_eps", "must be positive");
  return c;
}

ClipVisionConfig ClipVisionConfig::from_json(const JsonConfig& cfg, const std::string& nested_key) {
  if (!cfg.has(nested_key) || !cfg.raw().at(nested_key).is_object())
    throw Error(cfg.source() + ": missing object '" + nested_key + "' (the vision tower's config)");
  return from_json(JsonConfig(cfg.raw().at(nested_key), cfg.source() + " (" + nested_key + ")"));
}

ClipEncoderConfig ClipVisionConfig::encoder_config() const {
  return {hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, activation, layer_norm_eps};
}

ClipVisionModel::ClipVisionModel(const ClipVisionConfig& cfg, nn::ParamSource& params, const std::string& prefix)
    : config_(cfg),
      device_(params.device()),
      patch_embedding_(params, nn::join(prefix, "embeddings.patch_embedding"), cfg.num_channels, cfg.hidden_size,
                       cfg.patch_size, /*stride=*/cfg.patch_size, /*padding=*/0, /*has_bias=*/false),
      class_embedding_(
          params.get(nn::join(prefix, "embeddings.class_embedding"), {cfg.hidden_size}, nn::Init::Embedding)),
      position_embedding_(params, nn::join(prefix, "embeddings.position_embedding"), cfg.num_patches() + 1,
                          cfg.hidden_size),
      pre_layrnorm_(params, nn::join(prefix, "pre_layrnorm"), cfg.hidden_size, cfg.layer_norm_eps),
      encoder_(cfg.encoder_config(), params, nn::join(prefix, "encoder")),
      post_layernorm_(params, nn::join(prefix, "post_layernorm"), cfg.hidden_size, cfg.layer_norm_eps) {}

at::Tensor ClipVisionModel::embeddings(const at::Tensor& pixel_values) const {
  const int64_t S = config_.image_size;
  if (!pixel_values.defined() || pixel_values.dim() != 4 || pixel_values.size(0) < 1 ||
      pixel_values.size(1) != config_.num_channels || pixel_values.size(2) != S || pixel_values.size(3) != S ||
      !at::isFloatingType(pixel_values.scalar_type()))
    throw Error("CLIP vision tower: pixel_values must be a float [batch, " + std::to_string(config_.num_channels) +
                ", " + std::to_string(S) + ", " + std::to_string(S) + "] tensor (image_size " + std::to_string(S) +
                "), got " + (pixel_values.defined() ? c10::str(pixel_values.sizes()) : std::string("none")));
  const at::Tensor x = pixel_values.to(device_, at::kFloat);
  const int64_t B = x.size(0), C = config_.hidden_size;
  at::Tensor patches = patch_embedding_(x).flatten(2).transpose(1, 2);  // [B, P, C]
  at::Tensor cls = class_embedding_.view({1, 1, C}).expand({B, 1, C});
  at::Tensor h = at::cat({cls, patches}, 1);
  h = h + position_embedding_(at::arange(h.size(1), x.options().dtype(at::kLong)));
  return pre_layrnorm_(h);
}

ClipVisionModel::Output ClipVisionModel::forward(const at::Tensor& pixel_values, bool want_hidden_states) const {
  Output out;
  out.last_hidden_state =
      encoder_.forward(embeddings(pixel_values), {}, want_hidden_states ? &out.hidden_states : nullptr);
  out.pooler_output = post_layernorm_(out.last_hidden_state.select(1, 0));
  return out;
}

at::Tensor ClipVisionModel::hidden_state(const at::Tensor& pixel_values, int64_t layer) const {
  const int64_t L = encoder_.num_layers();
  const int64_t index = layer < 0 ? L + 1 + layer : layer;
  if (index < 0 || index > L)
    throw Error("CLIP vision tower: hidden state " + std::to_string(layer) + " does not exist (the tower has " +
                std::to_string(L) + " layers, so " + std::to_string(-L - 1) + " .. " + std::to_string(L) + ")");
  at::Tensor h = embeddings(pixel_values);
  for (int64_t i = 0; i < index; ++i) h = encoder_.layer(i)(h, {});
  return h;
}

}  // namespace pictor::models
