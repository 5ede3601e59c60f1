#pragma once
// CLIP (transformers' CLIPModel): the text and vision towers, their projections into a shared space
// (`text_projection`, `visual_projection`, no bias) and the learned temperature `logit_scale`. Also
// CLIPScore (Hessel et al. 2021), the reference-free caption/image agreement metric built on it.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/clip_text.hpp"
#include "models/clip_vision.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct ClipModelConfig {
  ClipTextConfig text;      // "text_config" (absent fields take CLIPTextConfig's defaults)
  ClipVisionConfig vision;  // "vision_config"
  int64_t projection_dim = 512;
  double logit_scale_init_value = 2.6592;  // only used for random weights

  // From a CLIPModel config.json; other architectures/model types throw Unsupported naming the field.
  static ClipModelConfig from_json(const JsonConfig& cfg);
};

class ClipModel {
 public:
  struct Output {
    at::Tensor image_embeds;      // [Ni, projection_dim], L2-normalised
    at::Tensor text_embeds;       // [Nt, projection_dim], L2-normalised
    at::Tensor logits_per_image;  // [Ni, Nt] = exp(logit_scale) * image_embeds @ text_embeds.T
    at::Tensor logits_per_text;   // [Nt, Ni], its transpose
    ClipTextModel::Output text;
    ClipVisionModel::Output vision;
  };

  ClipModel(const ClipModelConfig& cfg, nn::ParamSource& params);
  // Loads a transformers CLIPModel folder (config.json + model*.safetensors). Tensors the model does not
  // use are refused (except the position_ids buffers).
  static std::unique_ptr<ClipModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  // input_ids/attention_mask [Nt, T] (mask may be undefined: no padding), pixel_values [Ni, 3, S, S].
  Output forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, const at::Tensor& pixel_values,
                 bool want_hidden_states = false) const;
  // L2-normalised projected embeddings of one tower.
  at::Tensor image_embeds(const at::Tensor& pixel_values) const;
  at::Tensor text_embeds(const at::Tensor& input_ids, const at::Tensor& attention_mask = {}) const;
  // exp(logit_scale), the temperature of logits_per_image.
  double logit_scale() const;

  const ClipModelConfig& config() const { return config_; }
  const ClipTextModel& text_model() const { return text_; }
  const ClipVisionModel& vision_model() const { return vision_; }
  c10::Device device() const { return vision_.device(); }

 private:
  ClipModelConfig config_;
  ClipTextModel text_;
  ClipVisionModel vision_;
  nn::Linear text_projection_, visual_projection_;
  at::Tensor logit_scale_;  // scalar, log of the temperature
};

// Cosine similarity of every image embedding with every text embedding: [Ni, D] x [Nt, D] -> [Ni, Nt].
// The inputs need not be normalised.
at::Tensor clip_cosine(const at::Tensor& image_embeds, const at::Tensor& text_embeds);
// CLIPScore = w * max(cos, 0) per pair, [Ni, Nt] (Hessel et al. 2021, w = 2.5). The paper's reference
// implementation also prefixes captions with "A photo depicts"; that is the caller's choice here.
at::Tensor clip_score(const at::Tensor& image_embeds, const at::Tensor& text_embeds, double w = 2.5);

}  // namespace pictor::models
