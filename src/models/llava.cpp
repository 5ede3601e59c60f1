#include "models/llava.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"

namespace fs = std::filesystem;

namespace pictor::models {

LlavaConfig LlavaConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "llava")
    throw Unsupported(src + ": field 'model_type': '" + cfg.get<std::string>("model_type") + "' (expected 'llava')");
  LlavaConfig c;
  c.vision = ClipVisionConfig::from_json(cfg, "vision_config");
  const json& vision = cfg.raw().at("vision_config");
  if (!vision.contains("model_type") || vision["model_type"] != "clip_vision_model")
    throw Unsupported(src + " (vision_config): field 'model_type': " +
                      (vision.contains("model_type") ? vision["model_type"].dump() : std::string("absent")) +
                      " (only a CLIP vision tower, 'clip_vision_model', is implemented)");
  c.text = LlamaConfig::from_json(cfg, "text_config");
  c.image_token_index = cfg.get<int64_t>("image_token_index", c.image_token_index);
  if (c.image_token_index < 0) cfg.fail("image_token_index", "must not be negative");
  if (cfg.has("vision_feature_layer") && !cfg.raw().at("vision_feature_layer").is_number_integer())
    throw Unsupported(src + ": field 'vision_feature_layer': " + cfg.raw().at("vision_feature_layer").dump() +
                      " (only a single layer index is implemented)");
  c.vision_feature_layer = cfg.get<int64_t>("vision_feature_layer", c.vision_feature_layer);
  const int64_t L = c.vision.num_hidden_layers;
  if (c.vision_feature_layer < -(L + 1) || c.vision_feature_layer > L)
    cfg.fail("vision_feature_layer", std::to_string(c.vision_feature_layer) + " is not a hidden state of a " +
                                         std::to_string(L) + "-layer vision tower");
  const auto strategy = cfg.get<std::string>("vision_feature_select_strategy", "default");
  if (strategy != "default" && strategy != "full")
    throw Unsupported(src + ": field 'vision_feature_select_strategy': '" + strategy +
                      "' (expected 'default' or 'full')");
  c.drop_cls = strategy == "default";
  c.projector_hidden_act = cfg.get<std::string>("projector_hidden_act", c.projector_hidden_act);
  c.projector_activation = nn::parse_activation(c.projector_hidden_act, src + ": field 'projector_hidden_act'");
  if (cfg.has("multimodal_projector_bias") && !cfg.get<bool>("multimodal_projector_bias"))
    throw Unsupported(src + ": field 'multimodal_projector_bias': false (the projector has biases)");
  c.image_seq_length = cfg.get<int64_t>("image_seq_length", c.image_seq_length);
  return c;
}

LlavaModel::LlavaModel(const LlavaConfig& cfg, nn::ParamSource& params)
    : config_(cfg),
      vision_(cfg.vision, params, "vision_tower.vision_model"),
      linear_1_(params, "multi_modal_projector.linear_1", cfg.vision.hidden_size, cfg.text.hidden_size),
      linear_2_(params, "multi_modal_projector.linear_2", cfg.text.hidden_size, cfg.text.hidden_size),
      language_model_(cfg.text, params, "language_model.model", "language_model.lm_head") {}

std::unique_ptr<LlavaModel> LlavaModel::load(const fs::path& dir, c10::Device device, bool int8_text) {
  LlavaConfig cfg = LlavaConfig::from_json(JsonConfig::load(dir / "config.json"));
  cfg.text.int8_weights = int8_text;
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<LlavaModel>(cfg, params);
  // Non-persistent buffers that older exports saved, and a tied model's redundant lm_head.
  params.refuse_unused("a LLaVA model", [&](const std::string& name) {
    return name == "vision_tower.vision_model.embeddings.position_ids" || name.ends_with("rotary_emb.inv_freq") ||
           (cfg.text.tie_word_embeddings && name == "language_model.lm_head.weight");
  });
  return model;
}

at::Tensor LlavaModel::select_image_features(const at::Tensor& pixel_values) const {
  at::Tensor h = vision_.hidden_state(pixel_values, config_.vision_feature_layer);
  return config_.drop_cls ? h.narrow(1, 1, h.size(1) - 1) : h;
}

at::Tensor LlavaModel::project(const at::Tensor& image_features) const {
  return linear_2_(nn::activate(linear_1_(image_features), config_.projector_activation));
}

at::Tensor LlavaModel::image_features(const at::Tensor& pixel_values) const {
  return project(select_image_features(pixel_values));
}

at::Tensor LlavaModel::embed(const at::Tensor& input_ids, const at::Tensor& pixel_values) const {
  at::Tensor embeds = language_model_.embed(input_ids);
  if (!pixel_values.defined()) return embeds;
  const at::Tensor is_image = input_ids.to(embeds.device()).eq(config_.image_token_index);
  const int64_t n_tokens = is_image.sum().item<int64_t>();
  const int64_t n_images = pixel_values.dim() == 4 ? pixel_values.size(0) : 0;
  const int64_t expected = n_images * config_.image_tokens_per_image();
  if (n_tokens != expected)
    throw Error("LLaVA: the prompt has " + std::to_string(n_tokens) + " image tokens (id " +
                std::to_string(config_.image_token_index) + ") but " + std::to_string(n_images) + " image(s) give " +
                std::to_string(expected) + " features; expand each <image> to " +
                std::to_string(config_.image_tokens_per_image()) + " tokens as LlavaProcessor does");
  const at::Tensor features = image_features(pixel_values).to(embeds.scalar_type());
  // masked_scatter fills the masked positions in row-major order, as transformers does.
  return embeds.masked_scatter(is_image.unsqueeze(-1).expand_as(embeds), features.reshape({-1, embeds.size(-1)}));
}

at::Tensor LlavaModel::forward(const at::Tensor& input_ids, const at::Tensor& pixel_values,
                               const at::Tensor& attention_mask) const {
  return language_model_.forward(embed(input_ids, pixel_values), attention_mask);
}

StepFn LlavaModel::step_function(KVCache& cache, const at::Tensor& pixel_values) const {
  return [this, &cache, &pixel_values](const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& positions) {
    const at::Tensor input = cache.length() == 0 ? embed(ids, pixel_values) : language_model_.embed(ids);
    return language_model_.forward(input, mask, positions, &cache, nullptr, /*last_logits_only=*/true).squeeze(1);
  };
}

GenerationResult LlavaModel::generate(const at::Tensor& input_ids, const at::Tensor& pixel_values,
                                      const at::Tensor& attention_mask, const GenerationConfig& config,
                                      const GenerationCallbacks& callbacks, bool keep_step_logits) const {
  KVCache cache;
  cache.reserve(input_ids.size(1) + config.max_new_tokens);
  return models::generate(step_function(cache, pixel_values), input_ids, attention_mask, config, callbacks,
                          keep_step_logits);
}

std::string expand_image_tokens(const std::string& prompt, const std::string& image_token, int64_t count) {
  if (image_token.empty()) return prompt;
  std::string expanded, repeated;
  for (int64_t i = 0; i < count; ++i) repeated += image_token;
  size_t from = 0;
  for (size_t at = prompt.find(image_token); at != std::string::npos; at = prompt.find(image_token, from)) {
    expanded.append(prompt, from, at - from);
    expanded += repeated;
    from = at + image_token.size();
  }
  expanded.append(prompt, from, std::string::npos);
  return expanded;
}

}  // namespace pictor::models
