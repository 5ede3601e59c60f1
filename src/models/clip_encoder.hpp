#pragma once
// The pre-LayerNorm transformer encoder shared by both CLIP towers (transformers' CLIPEncoder): the
// text tower runs it with a causal mask, the vision tower without one. Parameter names follow the
// checkpoints: `<prefix>.layers.N.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2}`.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct ClipEncoderConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  nn::Activation activation = nn::Activation::QuickGELU;
  double layer_norm_eps = 1e-5;
};

// Multi-head self-attention with separate q/k/v projections (all with bias) in the checkpoint; they run
// as one joined product (`qkv`, whose slices q_proj/k_proj/v_proj view).
struct ClipAttention {
  nn::Linear q_proj, k_proj, v_proj, out_proj;
  nn::Linear qkv;
  int64_t num_heads = 0;
  ClipAttention() = default;
  ClipAttention(nn::ParamSource& p, const std::string& prefix, int64_t hidden, int64_t heads);
  // x [B, T, C]; `mask` is additive and broadcastable to [B, H, T, T] (undefined: no mask).
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& mask) const;
};

struct ClipMlp {
  nn::Linear fc1, fc2;
  nn::Activation activation = nn::Activation::QuickGELU;
  ClipMlp() = default;
  ClipMlp(nn::ParamSource& p, const std::string& prefix, int64_t hidden, int64_t intermediate, nn::Activation act);
  at::Tensor operator()(const at::Tensor& x) const;
};

// x + attn(ln1(x)), then x + mlp(ln2(x)).
struct ClipEncoderLayer {
  nn::LayerNorm layer_norm1, layer_norm2;
  ClipAttention self_attn;
  ClipMlp mlp;
  ClipEncoderLayer() = default;
  ClipEncoderLayer(nn::ParamSource& p, const std::string& prefix, const ClipEncoderConfig& cfg);
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& mask) const;
};

class ClipEncoder {
 public:
  ClipEncoder() = default;
  // `prefix` is the encoder's checkpoint path, e.g. "text_model.encoder".
  ClipEncoder(const ClipEncoderConfig& cfg, nn::ParamSource& p, const std::string& prefix);
  // Runs all layers. When `hidden_states` is given it receives the input followed by every layer's
  // output (num_layers + 1 tensors, as transformers' output_hidden_states).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask,
                     std::vector<at::Tensor>* hidden_states = nullptr) const;
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const ClipEncoderLayer& layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }

 private:
  std::vector<ClipEncoderLayer> layers_;
};

}  // namespace pictor::models
