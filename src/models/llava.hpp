#pragma once
// LLaVA-1.5 (transformers' LlavaForConditionalGeneration, v4.46): a CLIP vision tower whose hidden
// state at `vision_feature_layer` (class token dropped with the "default" strategy) goes through a
// two-layer MLP projector into the Llama language model's embedding space, where it replaces the
// embeddings of the `<image>` tokens (LlavaProcessor expands each `<image>` to one token per patch).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/json_file.hpp"
#include "models/clip_vision.hpp"
#include "models/kv_cache.hpp"
#include "models/llama.hpp"
#include "models/text_generation.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct LlavaConfig {
  ClipVisionConfig vision;  // "vision_config" (must be a clip_vision_model)
  LlamaConfig text;         // "text_config" (must be llama)
  int64_t image_token_index = 32000;
  int64_t vision_feature_layer = -2;  // index into the tower's hidden_states (0 = embeddings)
  bool drop_cls = true;               // vision_feature_select_strategy "default" (true) or "full"
  std::string projector_hidden_act = "gelu";
  nn::Activation projector_activation = nn::Activation::GELU;
  int64_t image_seq_length = 576;

  // From a LlavaForConditionalGeneration config.json; unsupported values (a list of feature layers,
  // another strategy, a non-CLIP tower, a non-Llama LM) throw Unsupported naming the file and field.
  static LlavaConfig from_json(const JsonConfig& cfg);
  // Image tokens per image: one per patch, plus the class token with the "full" strategy.
  int64_t image_tokens_per_image() const { return vision.num_patches() + (drop_cls ? 0 : 1); }
};

class LlavaModel {
 public:
  // Checkpoint names: `vision_tower.vision_model.*`, `multi_modal_projector.linear_{1,2}`,
  // `language_model.model.*`, `language_model.lm_head`.
  LlavaModel(const LlavaConfig& cfg, nn::ParamSource& params);
  // Loads a transformers LLaVA folder (config.json + model*.safetensors); unknown tensors are refused.
  // int8_text: the language model is built with int8 linear layers (LlamaConfig::int8_weights).
  static std::unique_ptr<LlavaModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU,
                                          bool int8_text = false);

  // The tower's selected features [N, tokens, vision_hidden] of pixel_values [N, 3, S, S].
  at::Tensor select_image_features(const at::Tensor& pixel_values) const;
  // The projector on selected features: [N, tokens, text_hidden].
  at::Tensor project(const at::Tensor& image_features) const;
  // select_image_features + project.
  at::Tensor image_features(const at::Tensor& pixel_values) const;

  // Token embeddings of input_ids [B, T] with the image features of pixel_values (one image after the
  // other, in reading order) written over the `<image>` positions. The number of `<image>` ids must equal
  // N * image_tokens_per_image() (the prompt is expanded as LlavaProcessor does; see expand_image_tokens).
  // Undefined pixel_values: plain token embeddings (then `<image>` ids are ordinary tokens).
  at::Tensor embed(const at::Tensor& input_ids, const at::Tensor& pixel_values) const;
  // Logits [B, T, V] (attention_mask [B, T] of 0/1 for left padding; undefined = none).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& pixel_values,
                     const at::Tensor& attention_mask = {}) const;

  // A generation step function: the first call (the prompt, cache empty) splices the image features
  // in; later calls embed the new tokens as text, as transformers passes pixel_values only at prefill.
  // The model, the cache and pixel_values must outlive it.
  StepFn step_function(KVCache& cache, const at::Tensor& pixel_values) const;
  // Greedy or sampled generation from an expanded prompt (see text_generation.hpp).
  GenerationResult generate(const at::Tensor& input_ids, const at::Tensor& pixel_values,
                            const at::Tensor& attention_mask, const GenerationConfig& config,
                            const GenerationCallbacks& callbacks = {}, bool keep_step_logits = false) const;

  const LlavaConfig& config() const { return config_; }
  const ClipVisionModel& vision_tower() const { return vision_; }
  const LlamaModel& language_model() const { return language_model_; }
  c10::Device device() const { return language_model_.device(); }

 private:
  LlavaConfig config_;
  ClipVisionModel vision_;
  nn::Linear linear_1_, linear_2_;
  LlamaModel language_model_;
};

// LlavaProcessor's prompt expansion (v4.46): every `image_token` in `prompt` becomes `count` copies of
// itself, written back to back.
std::string expand_image_tokens(const std::string& prompt, const std::string& image_token, int64_t count);

}  // namespace pictor::models
