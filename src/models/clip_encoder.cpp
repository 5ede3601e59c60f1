#include "models/clip_encoder.hpp"

#include <ATen/ATen.h>

#include "nn/attention.hpp"

namespace pictor::models {

ClipAttention::ClipAttention(nn::ParamSource& p, const std::string& prefix, int64_t hidden, int64_t heads)
    : q_proj(p, nn::join(prefix, "q_proj"), hidden, hidden),
      k_proj(p, nn::join(prefix, "k_proj"), hidden, hidden),
      v_proj(p, nn::join(prefix, "v_proj"), hidden, hidden),
      out_proj(p, nn::join(prefix, "out_proj"), hidden, hidden),
      qkv(nn::join_outputs({&q_proj, &k_proj, &v_proj})),
      num_heads(heads) {}

at::Tensor ClipAttention::operator()(const at::Tensor& x, const at::Tensor& mask) const {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / num_heads;
  // One product for q, k and v; each is a strided [B, H, T, D] view of it (the attention kernels take
  // any strides with a unit last one).
  const at::Tensor joined = qkv(x).view({B, T, 3, num_heads, D});
  auto heads = [&](int64_t i) { return joined.select(2, i).transpose(1, 2); };
  at::Tensor o = nn::attention(heads(0), heads(1), heads(2), mask);
  return out_proj(o.transpose(1, 2).reshape({B, T, C}));
}

ClipMlp::ClipMlp(nn::ParamSource& p, const std::string& prefix, int64_t hidden, int64_t intermediate,
                 nn::Activation act)
    : fc1(p, nn::join(prefix, "fc1"), hidden, intermediate),
      fc2(p, nn::join(prefix, "fc2"), intermediate, hidden),
      activation(act) {}

at::Tensor ClipMlp::operator()(const at::Tensor& x) const {
  return fc2(fc1(x, activation));
}

ClipEncoderLayer::ClipEncoderLayer(nn::ParamSource& p, const std::string& prefix, const ClipEncoderConfig& cfg)
    : layer_norm1(p, nn::join(prefix, "layer_norm1"), cfg.hidden_size, cfg.layer_norm_eps),
      layer_norm2(p, nn::join(prefix, "layer_norm2"), cfg.hidden_size, cfg.layer_norm_eps),
      self_attn(p, nn::join(prefix, "self_attn"), cfg.hidden_size, cfg.num_heads),
      mlp(p, nn::join(prefix, "mlp"), cfg.hidden_size, cfg.intermediate_size, cfg.activation) {}

at::Tensor ClipEncoderLayer::operator()(const at::Tensor& x, const at::Tensor& mask) const {
  at::Tensor h = x + self_attn(layer_norm1(x), mask);
  return h + mlp(layer_norm2(h));
}

ClipEncoder::ClipEncoder(const ClipEncoderConfig& cfg, nn::ParamSource& p, const std::string& prefix) {
  layers_.reserve(static_cast<size_t>(cfg.num_layers));
  for (int64_t i = 0; i < cfg.num_layers; ++i)
    layers_.emplace_back(p, nn::join(prefix, "layers." + std::to_string(i)), cfg);
}

at::Tensor ClipEncoder::forward(const at::Tensor& x, const at::Tensor& mask,
                                std::vector<at::Tensor>* hidden_states) const {
  at::Tensor h = x;
  if (hidden_states) hidden_states->push_back(h);
  for (const auto& layer : layers_) {
    h = layer(h, mask);
    if (hidden_states) hidden_states->push_back(h);
  }
  return h;
}

}  // namespace pictor::models
