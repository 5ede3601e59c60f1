#pragma once
// Idefics3 / SmolVLM (transformers' Idefics3ForConditionalGeneration, v4.46): a SigLIP-style vision
// tower encodes every real frame, a connector folds scale_factor^2 neighbouring patches into one token
// (pixel shuffle) and projects it to the language model's width, and those tokens replace the `<image>`
// token embeddings of the prompt before the Llama decoder runs.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/json_file.hpp"
#include "models/llama.hpp"
#include "models/siglip_vision.hpp"
#include "models/text_generation.hpp"

namespace pictor::models {

struct Idefics3Config {
  SiglipVisionConfig vision;  // "vision_config" (Idefics3VisionConfig defaults, no pooling head)
  // "text_config". Its tie_word_embeddings decides whether lm_head shares the token embeddings, as
  // transformers 4.46's tie_weights (config.get_text_config(decoder=True)); the top-level field is not read.
  LlamaConfig text;
  int64_t scale_factor = 2;
  int64_t image_token_id = 128257;

  // Image tokens per frame: (image_size / patch_size)^2 / scale_factor^2.
  int64_t image_seq_len() const;
  static Idefics3Config from_json(const JsonConfig& cfg);
};

// Intermediate results of an Idefics3 forward, for inspection and conformance.
struct Idefics3Trace {
  std::vector<at::Tensor> vision_hidden_states;  // of the real frames (only when asked)
  at::Tensor vision_last_hidden_state;           // [N_real, patches, vision_hidden]
  at::Tensor image_hidden_states;                // connector output [N_real, image_seq_len, text_hidden]
  std::vector<at::Tensor> text_hidden_states;    // LM hidden states (only when asked)
};

class Idefics3Model {
 public:
  // Checkpoint names: model.vision_model.*, model.connector.modality_projection.proj.weight,
  // model.text_model.*, lm_head.weight (not read when text_config ties it).
  Idefics3Model(const Idefics3Config& cfg, nn::ParamSource& params);
  // Loads a model folder (config.json + model*.safetensors); unexpected tensors are refused.
  // int8_text: the language model is built with int8 linear layers (LlamaConfig::int8_weights).
  static std::unique_ptr<Idefics3Model> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU,
                                             bool int8_text = false);

  // Vision tower + connector on the real frames of pixel_values [B, F, 3, H, W] (frames whose values are
  // all exactly 0.0 are padding and dropped), in batch-then-frame order. `pixel_attention_mask`
  // [B, F, H, W] (0/1; undefined = all real) marks padded pixels; a patch is real when any of its
  // pixels is. Returns [N_real, image_seq_len, text_hidden].
  at::Tensor encode_images(const at::Tensor& pixel_values, const at::Tensor& pixel_attention_mask = {},
                           Idefics3Trace* trace = nullptr, bool output_hidden_states = false) const;
  // Pixel shuffle (scale_factor) then the modality projection: [N, patches, C] -> [N, patches/s^2, text_hidden].
  at::Tensor connector(const at::Tensor& vision_last_hidden_state) const;
  // Token embeddings of input_ids [B, T] with the `<image>` positions replaced, in order, by the rows of
  // image_hidden_states [N, seq, hidden]; their counts must agree.
  at::Tensor merge_image_embeddings(const at::Tensor& input_ids, const at::Tensor& image_hidden_states) const;

  // Logits [B, T, V] of the prompt with its images (pixel_values undefined: text only). Positions are
  // 0..T-1 as transformers' forward (left padding only masks keys).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, const at::Tensor& pixel_values,
                     const at::Tensor& pixel_attention_mask = {}, Idefics3Trace* trace = nullptr,
                     bool output_hidden_states = false) const;

  // Generates as transformers' generate: images are encoded once and spliced into the prompt at prefill;
  // tokens generated later (an `<image>` id included) are embedded as ordinary tokens.
  GenerationResult generate(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                            const at::Tensor& pixel_values, const at::Tensor& pixel_attention_mask,
                            const GenerationConfig& config, const GenerationCallbacks& callbacks = {},
                            bool keep_step_logits = false) const;

  const Idefics3Config& config() const { return config_; }
  const SiglipVisionModel& vision_model() const { return vision_; }
  const LlamaModel& text_model() const { return text_; }
  LlamaModel& text_model() { return text_; }

 private:
  Idefics3Config config_;
  SiglipVisionModel vision_;
  at::Tensor projection_;  // [text_hidden, vision_hidden * scale^2], no bias
  LlamaModel text_;
};

}  // namespace pictor::models
