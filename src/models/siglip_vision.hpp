#pragma once
// The SigLIP vision tower (transformers' SiglipVisionModel, v4.46): a strided patch convolution plus
// learned position embeddings (no CLS token), the pre-LayerNorm encoder CLIP uses (gelu_pytorch_tanh),
// a post-LayerNorm and an optional attention-pooling head (a learned probe attending to all patches).
// Idefics3/SmolVLM use the same tower without the head, on frames that may be partly padding: they pass
// a patch mask, and positions then follow transformers' Idefics3VisionEmbeddings (bucketized fractional
// coordinates of the valid patch grid).
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

struct SiglipVisionConfig {
  // Defaults are transformers' SiglipVisionConfig defaults.
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 16;
  double layer_norm_eps = 1e-6;
  std::string hidden_act = "gelu_pytorch_tanh";
  nn::Activation activation = nn::Activation::GELUTanh;
  bool use_head = true;  // config field `vision_use_head` (absent = true)

  int64_t patches_per_side() const { return image_size / patch_size; }
  int64_t num_patches() const { return patches_per_side() * patches_per_side(); }
  ClipEncoderConfig encoder_config() const;

  // From a SiglipVisionModel config.json (flat) or a SiglipModel config.json (reads its "vision_config").
  static SiglipVisionConfig from_json(const JsonConfig& cfg);
  // From a flat vision config object whose absent fields take `defaults` (Idefics3 has other defaults).
  static SiglipVisionConfig from_flat_json(const JsonConfig& cfg, const SiglipVisionConfig& defaults);
  // transformers' Idefics3VisionConfig defaults (SigLIP-so400m-like, patch 32, no head).
  static SiglipVisionConfig idefics3_defaults();
};

struct SiglipVisionOutput {
  at::Tensor last_hidden_state;           // [B, patches, hidden], after post_layernorm
  at::Tensor pooler_output;               // [B, hidden] from the head; undefined without a head
  std::vector<at::Tensor> hidden_states;  // L + 1 entries (embeddings, each layer; before post_layernorm)
};

class SiglipVisionModel {
 public:
  // Checkpoint names under `prefix` ("vision_model" for SigLIP, "model.vision_model" for Idefics3):
  // embeddings.{patch_embedding,position_embedding}, encoder.layers.N.*, post_layernorm and, with a head,
  // head.{probe, attention.{in_proj_weight,in_proj_bias,out_proj}, layernorm, mlp.{fc1,fc2}}.
  SiglipVisionModel(const SiglipVisionConfig& cfg, nn::ParamSource& params, const std::string& prefix = "vision_model");
  // Loads a SiglipVisionModel or SiglipModel folder (config.json + model*.safetensors); only tensors
  // under "vision_model." are used and any unexpected one there is refused.
  static std::unique_ptr<SiglipVisionModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  // pixel_values [B, C, H, W] (H, W multiples of patch_size). Without `patch_attention_mask` the image
  // must be image_size x image_size and positions are 0..N-1 (SiglipVisionEmbeddings). With a mask
  // [B, H/patch, W/patch] (bool or 0/1; true = real patch) positions are bucketized as Idefics3 does and
  // masked patches are hidden from attention as keys.
  SiglipVisionOutput forward(const at::Tensor& pixel_values, const at::Tensor& patch_attention_mask = {},
                             bool output_hidden_states = false) const;
  // Patch + position embeddings [B, patches, hidden].
  at::Tensor embed(const at::Tensor& pixel_values, const at::Tensor& patch_attention_mask = {}) const;

  const SiglipVisionConfig& config() const { return config_; }

 private:
  struct PoolingHead {
    at::Tensor probe;                         // [1, 1, hidden]
    at::Tensor in_proj_weight, in_proj_bias;  // packed q/k/v of nn.MultiheadAttention
    nn::Linear out_proj;
    nn::LayerNorm layernorm;
    ClipMlp mlp;
  };
  at::Tensor position_ids(const at::Tensor& patch_attention_mask, int64_t rows, int64_t cols) const;
  at::Tensor pool(const at::Tensor& last_hidden_state) const;

  SiglipVisionConfig config_;
  nn::Conv2d patch_embedding_;
  nn::Embedding position_embedding_;
  ClipEncoder encoder_;
  nn::LayerNorm post_layernorm_;
  bool has_head_ = false;
  PoolingHead head_;
};

}  // namespace pictor::models
