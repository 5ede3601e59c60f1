#include "models/idefics3.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "models/kv_cache.hpp"

namespace fs = std::filesystem;

namespace pictor::models {

int64_t Idefics3Config::image_seq_len() const {
  return vision.num_patches() / (scale_factor * scale_factor);
}

Idefics3Config Idefics3Config::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("model_type") && cfg.get<std::string>("model_type") != "idefics3")
    throw Unsupported(src + ": field 'model_type': '" + cfg.get<std::string>("model_type") + "' (expected 'idefics3')");
  Idefics3Config c;
  if (!cfg.has("vision_config") || !cfg.raw().at("vision_config").is_object())
    throw Error(src + ": missing object 'vision_config' (the vision tower's config)");
  c.vision = SiglipVisionConfig::from_flat_json(JsonConfig(cfg.raw().at("vision_config"), src + " (vision_config)"),
                                                SiglipVisionConfig::idefics3_defaults());
  c.vision.use_head = false;  // Idefics3's vision transformer has no pooling head
  c.text = LlamaConfig::from_json(cfg, "text_config");
  c.scale_factor = cfg.get<int64_t>("scale_factor", c.scale_factor);
  if (c.scale_factor <= 0 || c.vision.patches_per_side() % c.scale_factor != 0)
    cfg.fail("scale_factor", std::to_string(c.scale_factor) + " must be positive and divide the " +
                                 std::to_string(c.vision.patches_per_side()) + " patches per side");
  c.image_token_id = cfg.get<int64_t>("image_token_id", c.image_token_id);
  if (c.image_token_id < 0 || c.image_token_id >= c.text.vocab_size)
    cfg.fail("image_token_id",
             std::to_string(c.image_token_id) + " is outside the vocabulary of " + std::to_string(c.text.vocab_size));
  return c;
}

Idefics3Model::Idefics3Model(const Idefics3Config& cfg, nn::ParamSource& params)
    : config_(cfg),
      vision_(cfg.vision, params, "model.vision_model"),
      projection_(params.get("model.connector.modality_projection.proj.weight",
                             {cfg.text.hidden_size, cfg.vision.hidden_size * cfg.scale_factor * cfg.scale_factor},
                             nn::Init::FanIn)),
      text_(cfg.text, params, "model.text_model", "lm_head") {}

std::unique_ptr<Idefics3Model> Idefics3Model::load(const fs::path& dir, c10::Device device, bool int8_text) {
  Idefics3Config cfg = Idefics3Config::from_json(JsonConfig::load(dir / "config.json"));
  cfg.text.int8_weights = int8_text;
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<Idefics3Model>(cfg, params);
  params.refuse_unused("an Idefics3 model", [&](const std::string& name) {
    return name.ends_with("rotary_emb.inv_freq") || (cfg.text.tie_word_embeddings && name == "lm_head.weight");
  });
  return model;
}

at::Tensor Idefics3Model::connector(const at::Tensor& x) const {
  // transformers' Idefics3Connector.pixel_shuffle: s x s neighbouring patches become one token whose
  // channels are ordered (row offset, column offset, channel).
  const int64_t N = x.size(0), seq = x.size(1), C = x.size(2), s = config_.scale_factor;
  const auto side = int64_t(std::lround(std::sqrt(double(seq))));
  if (side * side != seq || side % s != 0)
    throw Error("Idefics3 connector: " + std::to_string(seq) + " patches do not form a square grid divisible by " +
                "scale_factor " + std::to_string(s));
  at::Tensor h = x.reshape({N, side, side / s, C * s});
  h = h.permute({0, 2, 1, 3}).reshape({N, side / s, side / s, C * s * s});
  h = h.permute({0, 2, 1, 3}).reshape({N, seq / (s * s), C * s * s});
  return nn::linear(h, projection_);
}

at::Tensor Idefics3Model::encode_images(const at::Tensor& pixel_values, const at::Tensor& pixel_attention_mask,
                                        Idefics3Trace* trace, bool output_hidden_states) const {
  if (pixel_values.dim() != 5) throw Error("Idefics3: pixel_values must be [batch, frames, channels, height, width]");
  const int64_t B = pixel_values.size(0), F = pixel_values.size(1), H = pixel_values.size(3), W = pixel_values.size(4);
  const at::Tensor frames = pixel_values.reshape({B * F, pixel_values.size(2), H, W});
  // A frame made entirely of 0.0 is batch padding (the processor's empty frame).
  const at::Tensor real = frames.ne(0.0).flatten(1).any(1).to(at::kCPU);
  const at::Tensor real_frames = frames.index({real.to(frames.device())});
  const int64_t P = config_.vision.patch_size;
  if (H < P || W < P)
    throw Error("Idefics3: frame size " + std::to_string(H) + "x" + std::to_string(W) +
                " is smaller than the patch size " + std::to_string(P));
  at::Tensor pixel_mask;
  if (pixel_attention_mask.defined()) {
    if (pixel_attention_mask.dim() != 4 || pixel_attention_mask.size(0) != B || pixel_attention_mask.size(1) != F ||
        pixel_attention_mask.size(2) != H || pixel_attention_mask.size(3) != W)
      throw Error("Idefics3: pixel_attention_mask must be [batch, frames, height, width] like pixel_values");
    pixel_mask = pixel_attention_mask.reshape({B * F, H, W}).index({real.to(pixel_attention_mask.device())});
  } else {
    pixel_mask = at::ones({real_frames.size(0), H, W}, at::kLong);
  }
  // A patch takes part when any of its pixels is real (the unfold + sum > 0 of transformers). Like unfold,
  // whole patches only: pixels past the last full patch (384 = 27 * 14 + 6) are dropped.
  const at::Tensor cropped = pixel_mask.slice(1, 0, H / P * P).slice(2, 0, W / P * P);
  const at::Tensor patch_mask = cropped.ne(0).reshape({pixel_mask.size(0), H / P, P, W / P, P}).any(4).any(2);
  Idefics3Trace local;
  Idefics3Trace& t = trace ? *trace : local;
  SiglipVisionOutput v = vision_.forward(real_frames, patch_mask, output_hidden_states);
  t.vision_last_hidden_state = v.last_hidden_state;
  t.vision_hidden_states = std::move(v.hidden_states);
  t.image_hidden_states = connector(v.last_hidden_state);
  return t.image_hidden_states;
}

at::Tensor Idefics3Model::merge_image_embeddings(const at::Tensor& input_ids,
                                                 const at::Tensor& image_hidden_states) const {
  at::Tensor embeds = text_.embed(input_ids);
  if (!image_hidden_states.defined()) return embeds;
  const at::Tensor is_image = input_ids.eq(config_.image_token_id).to(embeds.device());
  const int64_t slots = is_image.sum().item<int64_t>();
  const int64_t provided = image_hidden_states.size(0) * image_hidden_states.size(1);
  if (slots != provided)
    throw Error("Idefics3: the prompt has " + std::to_string(slots) + " <image> tokens but the images give " +
                std::to_string(provided) + " (" + std::to_string(image_hidden_states.size(0)) + " frames x " +
                std::to_string(image_hidden_states.size(1)) + "); expand the prompt with the processor");
  // masked_scatter fills the marked positions in row-major order: frame after frame, sample after sample.
  return embeds.masked_scatter(is_image.unsqueeze(-1), image_hidden_states.to(embeds.scalar_type()));
}

at::Tensor Idefics3Model::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  const at::Tensor& pixel_values, const at::Tensor& pixel_attention_mask,
                                  Idefics3Trace* trace, bool output_hidden_states) const {
  Idefics3Trace local;
  Idefics3Trace& t = trace ? *trace : local;
  const at::Tensor images = pixel_values.defined()
                                ? encode_images(pixel_values, pixel_attention_mask, &t, output_hidden_states)
                                : at::Tensor();
  const at::Tensor embeds = merge_image_embeddings(input_ids, images);
  return text_.forward(embeds, attention_mask, {}, nullptr, output_hidden_states ? &t.text_hidden_states : nullptr);
}

GenerationResult Idefics3Model::generate(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                         const at::Tensor& pixel_values, const at::Tensor& pixel_attention_mask,
                                         const GenerationConfig& config, const GenerationCallbacks& callbacks,
                                         bool keep_step_logits) const {
  const at::Tensor images = pixel_values.defined() ? encode_images(pixel_values, pixel_attention_mask) : at::Tensor();
  KVCache cache;
  cache.reserve(input_ids.size(1) + config.max_new_tokens);
  bool prefill = true;
  // Only the prefill carries the images (transformers merges them while the cache is empty).
  StepFn step = [&](const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& positions) {
    at::Tensor input = ids;
    if (prefill) {
      input = merge_image_embeddings(ids, images);
      prefill = false;
    }
    return text_.forward(input, mask, positions, &cache, nullptr, /*last_logits_only=*/true).squeeze(1);
  };
  return models::generate(step, input_ids, attention_mask, config, callbacks, keep_step_logits);
}

}  // namespace pictor::models
