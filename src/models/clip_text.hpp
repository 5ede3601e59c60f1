#pragma once
// CLIP text encoder (transformers' CLIPTextModel), the text_encoder of SD1.x/SD2.x pipelines:
// token + position embeddings, a causal pre-LN transformer encoder and a final LayerNorm; the pooled
// output is the final state at the end-of-text token.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/clip_encoder.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  nn::Activation activation = nn::Activation::QuickGELU;
  double layer_norm_eps = 1e-5;
  // 2 in the legacy OpenAI-converted configs (SD1/SD2): pooling then uses argmax(input_ids), which is
  // the end-of-text token because it has the largest id in CLIP's vocabulary.
  int64_t eos_token_id = 49407;
  int64_t projection_dim = 512;

  // From a CLIPTextModel / CLIPTextModelWithProjection config.json. The sizes are required; the other
  // fields default as in transformers' CLIPTextConfig. Bad or unsupported values throw
  // Error/Unsupported naming the file and the field.
  static ClipTextConfig from_json(const JsonConfig& cfg);
  // From the object `nested_key` of a composite config ("text_config" of a CLIPModel config). As
  // transformers' CLIPConfig, absent fields (sizes included) take CLIPTextConfig's defaults; errors read
  // "FILE (text_config): field 'x' ...".
  static ClipTextConfig from_json(const JsonConfig& cfg, const std::string& nested_key);
  ClipEncoderConfig encoder_config() const;
};

class ClipTextModel {
 public:
  struct Output {
    at::Tensor last_hidden_state;  // [B, T, C], after final_layer_norm
    at::Tensor pooler_output;      // [B, C], last_hidden_state at the end-of-text position
    // Only with want_hidden_states: [0] = embeddings, [i] = output of layer i, [L] = before the final
    // LayerNorm (L + 1 tensors, as transformers' hidden_states).
    std::vector<at::Tensor> hidden_states;
  };

  // `prefix` is the checkpoint path of the text transformer ("text_model" in CLIPTextModel and CLIPModel).
  ClipTextModel(const ClipTextConfig& cfg, nn::ParamSource& params, const std::string& prefix = "text_model");
  // Loads a transformers folder (config.json + model*.safetensors). Tensors the model does not use are
  // refused, except the position_ids buffer and a CLIPTextModelWithProjection's text_projection.
  static std::unique_ptr<ClipTextModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  // input_ids [B, T] integer, 1 <= T <= max_position_embeddings, ids < vocab_size; no padding mask
  // (as the SD pipelines call it). Runs on the model's device.
  Output forward(const at::Tensor& input_ids, bool want_hidden_states = false) const;
  // With a padding mask [B, T] of 0/1 (0 = padding, as a tokenizer's attention_mask with padding=True):
  // padded keys are hidden from every query on top of the causal mask, as transformers' CLIPTextModel.
  // An undefined mask is the unmasked forward above.
  Output forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool want_hidden_states) const;
  // The model's final LayerNorm, e.g. for diffusers' clip_skip (applied to hidden_states[L - skip]).
  at::Tensor final_layer_norm(const at::Tensor& x) const;
  const ClipTextConfig& config() const { return config_; }
  c10::Device device() const { return device_; }

 private:
  ClipTextConfig config_;
  c10::Device device_{c10::kCPU};
  nn::Embedding token_embedding_, position_embedding_;
  ClipEncoder encoder_;
  nn::LayerNorm final_layer_norm_;
};

// Additive causal mask [1, 1, T, T]: 0 on and below the diagonal, the lowest float above it (as
// transformers, so a later padding mask can be added without producing -inf - -inf).
at::Tensor clip_causal_mask(int64_t T, const at::TensorOptions& options);

}  // namespace pictor::models
