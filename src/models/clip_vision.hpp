#pragma once
// CLIP vision tower (transformers' CLIPVisionModel): a patch-embedding convolution (no bias), a learned
// class token and position embeddings, `pre_layrnorm` (sic: transformers' checkpoint name), the shared
// pre-LN encoder, and `post_layernorm` applied to the class token only. Used by CLIPModel and as the
// vision tower of LLaVA (under the prefix "vision_tower.vision_model").
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/clip_encoder.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct ClipVisionConfig {
  // Defaults are transformers' CLIPVisionConfig defaults (ViT-B/32); composite configs omit fields
  // that keep them.
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t num_channels = 3;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  std::string hidden_act = "quick_gelu";
  nn::Activation activation = nn::Activation::QuickGELU;
  double layer_norm_eps = 1e-5;

  // From a CLIPVisionModel config.json (flat). Bad or unsupported values throw Error/Unsupported
  // naming the file and the field.
  static ClipVisionConfig from_json(const JsonConfig& cfg);
  // From the object `nested_key` of a composite config ("vision_config" of CLIPModel/LLaVA configs);
  // errors read "FILE (vision_config): field 'x' ...".
  static ClipVisionConfig from_json(const JsonConfig& cfg, const std::string& nested_key);
  ClipEncoderConfig encoder_config() const;
  int64_t patches_per_side() const { return image_size / patch_size; }
  int64_t num_patches() const { return patches_per_side() * patches_per_side(); }
};

class ClipVisionModel {
 public:
  struct Output {
    at::Tensor last_hidden_state;  // [B, 1 + P, C], NOT post-layernormed (as transformers)
    at::Tensor pooler_output;      // [B, C], post_layernorm(last_hidden_state[:, 0])
    // Only with want_hidden_states: [0] = embeddings after pre_layrnorm, [i] = output of layer i
    // (L + 1 tensors, as transformers' hidden_states; the last equals last_hidden_state).
    std::vector<at::Tensor> hidden_states;
  };

  // `prefix` is the checkpoint path of the vision transformer ("vision_model" in CLIPVisionModel and
  // CLIPModel, "vision_tower.vision_model" in LLaVA).
  ClipVisionModel(const ClipVisionConfig& cfg, nn::ParamSource& params, const std::string& prefix = "vision_model");

  // pixel_values [B, num_channels, image_size, image_size] floating (already normalised, e.g. by
  // ClipImageProcessor). Runs on the model's device.
  Output forward(const at::Tensor& pixel_values, bool want_hidden_states = false) const;
  // transformers' hidden_states[layer] without running the layers after it: layer 0 is the embedding
  // output, negative values count from the end (-1 = last layer, -2 = LLaVA's feature layer).
  at::Tensor hidden_state(const at::Tensor& pixel_values, int64_t layer) const;

  const ClipVisionConfig& config() const { return config_; }
  c10::Device device() const { return device_; }

 private:
  at::Tensor embeddings(const at::Tensor& pixel_values) const;

  ClipVisionConfig config_;
  c10::Device device_{c10::kCPU};
  nn::Conv2d patch_embedding_;
  at::Tensor class_embedding_;  // [C]
  nn::Embedding position_embedding_;
  nn::LayerNorm pre_layrnorm_;
  ClipEncoder encoder_;
  nn::LayerNorm post_layernorm_;
};

}  // namespace pictor::models
