#include "models/clip_model.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"

namespace fs = std::filesystem;

namespace pictor::models {

ClipModelConfig ClipModelConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("architectures")) {
    const auto archs = cfg.get<std::vector<std::string>>("architectures");
    bool ok = false;
    for (const auto& a : archs) ok = ok || a == "CLIPModel";
    if (!ok)
      throw Unsupported(src + ": field 'architectures': " + cfg.raw().at("architectures").dump() +
                        " is not a CLIP model (expected CLIPModel)");
  }
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "clip")
    throw Unsupported(src + ": field 'model_type': '" + cfg.get<std::string>("model_type") + "' (expected 'clip')");
  ClipModelConfig c;
  c.text = ClipTextConfig::from_json(cfg, "text_config");
  c.vision = ClipVisionConfig::from_json(cfg, "vision_config");
  c.projection_dim = cfg.get<int64_t>("projection_dim", c.projection_dim);
  if (c.projection_dim <= 0) cfg.fail("projection_dim", "must be positive");
  c.logit_scale_init_value = cfg.get<double>("logit_scale_init_value", c.logit_scale_init_value);
  return c;
}

ClipModel::ClipModel(const ClipModelConfig& cfg, nn::ParamSource& params)
    : config_(cfg),
      text_(cfg.text, params, "text_model"),
      vision_(cfg.vision, params, "vision_model"),
      text_projection_(params, "text_projection", cfg.text.hidden_size, cfg.projection_dim, /*has_bias=*/false),
      visual_projection_(params, "visual_projection", cfg.vision.hidden_size, cfg.projection_dim, /*has_bias=*/false),
      logit_scale_(params.get("logit_scale", {}, nn::Init::Zeros)) {}

std::unique_ptr<ClipModel> ClipModel::load(const fs::path& dir, c10::Device device) {
  const ClipModelConfig cfg = ClipModelConfig::from_json(JsonConfig::load(dir / "config.json"));
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<ClipModel>(cfg, params);
  params.refuse_unused("a CLIP model", [](const std::string& name) {
    return name == "text_model.embeddings.position_ids" || name == "vision_model.embeddings.position_ids";
  });
  return model;
}

namespace {
at::Tensor l2_normalize(const at::Tensor& x) {
  return x / x.norm(2, {-1}, /*keepdim=*/true);
}
}  // namespace

at::Tensor ClipModel::image_embeds(const at::Tensor& pixel_values) const {
  return l2_normalize(visual_projection_(vision_.forward(pixel_values).pooler_output));
}

at::Tensor ClipModel::text_embeds(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  return l2_normalize(text_projection_(text_.forward(input_ids, attention_mask, false).pooler_output));
}

double ClipModel::logit_scale() const {
  return std::exp(logit_scale_.item<double>());
}

ClipModel::Output ClipModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                     const at::Tensor& pixel_values, bool want_hidden_states) const {
  Output out;
  out.text = text_.forward(input_ids, attention_mask, want_hidden_states);
  out.vision = vision_.forward(pixel_values, want_hidden_states);
  out.text_embeds = l2_normalize(text_projection_(out.text.pooler_output));
  out.image_embeds = l2_normalize(visual_projection_(out.vision.pooler_output));
  // As transformers: logits_per_text first (text @ image.T, then scaled), logits_per_image its transpose.
  out.logits_per_text = at::matmul(out.text_embeds, out.image_embeds.t()) * logit_scale_.exp();
  out.logits_per_image = out.logits_per_text.t();
  return out;
}

at::Tensor clip_cosine(const at::Tensor& image_embeds, const at::Tensor& text_embeds) {
  if (image_embeds.dim() != 2 || text_embeds.dim() != 2 || image_embeds.size(1) != text_embeds.size(1))
    throw Error("CLIPScore: embeddings must be [N, D] with the same D");
  return at::matmul(l2_normalize(image_embeds), l2_normalize(text_embeds).t());
}

at::Tensor clip_score(const at::Tensor& image_embeds, const at::Tensor& text_embeds, double w) {
  return clip_cosine(image_embeds, text_embeds).clamp_min(0) * w;
}

}  // namespace pictor::models
