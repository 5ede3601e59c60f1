#include "models/unet_transformer.hpp"

#include <ATen/ATen.h>

#include "nn/attention.hpp"

namespace pictor::models::unet {

Attention::Attention(nn::ParamSource& p, const std::string& prefix, int64_t query_dim, int64_t context_dim,
                     int64_t heads_, int64_t head_dim, bool self)
    : to_q(p, nn::join(prefix, "to_q"), query_dim, heads_ * head_dim, false),
      to_k(p, nn::join(prefix, "to_k"), context_dim, heads_ * head_dim, false),
      to_v(p, nn::join(prefix, "to_v"), context_dim, heads_ * head_dim, false),
      to_out(p, nn::join(prefix, "to_out.0"), heads_ * head_dim, query_dim),
      joined(self && query_dim == context_dim ? nn::join_outputs({&to_q, &to_k, &to_v})
                                              : nn::join_outputs({&to_k, &to_v})),
      heads(heads_),
      self_attention(self && query_dim == context_dim) {}

at::Tensor Attention::operator()(const at::Tensor& x, const at::Tensor& context) const {
  const int64_t B = x.size(0), T = x.size(1), inner = to_q.weight.size(0), head_dim = inner / heads;
  // [B, S, n * H * D] -> n views [B, H, S, D] (strided; nn::attention takes any strides with a unit last
  // one and folds batch and heads itself).
  auto heads_of = [&](const at::Tensor& t, int64_t n, int64_t i) {
    return t.view({B, t.size(1), n, heads, head_dim}).select(2, i).transpose(1, 2);
  };
  at::Tensor o;
  if (!context.defined() && self_attention) {
    const at::Tensor qkv = joined(x);
    o = nn::attention(heads_of(qkv, 3, 0), heads_of(qkv, 3, 1), heads_of(qkv, 3, 2));
  } else if (context.defined() && !self_attention) {
    const at::Tensor kv = joined(context);
    o = nn::attention(heads_of(to_q(x), 1, 0), heads_of(kv, 2, 0), heads_of(kv, 2, 1));
  } else {  // used the other way than it was built for: the separate projections (views into `joined`)
    const at::Tensor& ctx = context.defined() ? context : x;
    o = nn::attention(heads_of(to_q(x), 1, 0), heads_of(to_k(ctx), 1, 0), heads_of(to_v(ctx), 1, 0));
  }
  return to_out(o.transpose(1, 2).reshape({B, T, inner}));
}

GegluFeedForward::GegluFeedForward(nn::ParamSource& p, const std::string& prefix, int64_t dim, int64_t inner)
    : proj(p, nn::join(prefix, "net.0.proj"), dim, inner * 2), out(p, nn::join(prefix, "net.2"), inner, dim) {}

at::Tensor GegluFeedForward::operator()(const at::Tensor& x) const {
  at::Tensor h = proj(x);
  const int64_t inner = h.size(-1) / 2;
  at::Tensor gate = at::gelu(h.narrow(-1, inner, inner));
  // Without autograd the product overwrites the activation instead of allocating a third [T, inner] map.
  const bool in_place = !at::GradMode::is_enabled() || c10::InferenceMode::is_enabled();
  return out(in_place ? gate.mul_(h.narrow(-1, 0, inner)) : h.narrow(-1, 0, inner) * gate);
}

BasicTransformerBlock::BasicTransformerBlock(nn::ParamSource& p, const std::string& prefix, int64_t dim, int64_t heads,
                                             int64_t head_dim, int64_t cross_dim, bool only_cross)
    : norm1(p, nn::join(prefix, "norm1"), dim, 1e-5),
      norm2(p, nn::join(prefix, "norm2"), dim, 1e-5),
      norm3(p, nn::join(prefix, "norm3"), dim, 1e-5),
      attn1(p, nn::join(prefix, "attn1"), dim, only_cross ? cross_dim : dim, heads, head_dim, !only_cross),
      attn2(p, nn::join(prefix, "attn2"), dim, cross_dim, heads, head_dim, false),
      ff(p, nn::join(prefix, "ff"), dim, dim * 4),
      only_cross_attention(only_cross) {}

at::Tensor BasicTransformerBlock::operator()(const at::Tensor& x, const at::Tensor& context) const {
  at::Tensor h = attn1(norm1(x), only_cross_attention ? context : at::Tensor()) + x;
  h = attn2(norm2(h), context) + h;
  return ff(norm3(h)) + h;
}

namespace {
// Loads proj_in/proj_out as Linear ([out, in]) or 1x1 Conv2d ([out, in, 1, 1]) weights.
void load_projection(nn::ParamSource& p, const std::string& name, int64_t in, int64_t out, bool linear, at::Tensor& w,
                     at::Tensor& b) {
  if (linear) {
    nn::Linear l(p, name, in, out);
    w = l.weight, b = l.bias;
  } else {
    nn::Conv2d c(p, name, in, out, 1);
    w = c.weight, b = c.bias;
  }
}
// The projection as a linear map over the channel (last) dimension of tokens.
at::Tensor project(const at::Tensor& tokens, const at::Tensor& w, const at::Tensor& b) {
  return nn::linear(tokens, w.dim() == 4 ? w.flatten(1) : w, b);
}
}  // namespace

Transformer2DModel::Transformer2DModel(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t heads,
                                       int64_t layers, int64_t cross_dim, int64_t groups, bool linear_projection,
                                       bool only_cross_attention)
    : norm(p, nn::join(prefix, "norm"), groups, channels, 1e-6) {
  const int64_t head_dim = channels / heads, inner = heads * head_dim;
  load_projection(p, nn::join(prefix, "proj_in"), channels, inner, linear_projection, proj_in_w, proj_in_b);
  for (int64_t i = 0; i < layers; ++i)
    blocks.emplace_back(p, nn::join(prefix, "transformer_blocks." + std::to_string(i)), inner, heads, head_dim,
                        cross_dim, only_cross_attention);
  load_projection(p, nn::join(prefix, "proj_out"), inner, channels, linear_projection, proj_out_w, proj_out_b);
}

at::Tensor Transformer2DModel::operator()(const at::Tensor& x, const at::Tensor& context) const {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor tokens = norm(x).permute({0, 2, 3, 1}).reshape({B, H * W, C});
  tokens = project(tokens, proj_in_w, proj_in_b);
  for (const auto& block : blocks) tokens = block(tokens, context);
  tokens = project(tokens, proj_out_w, proj_out_b);
  // Back to NCHW; adding to the contiguous residual first gives a contiguous NCHW result.
  return x + tokens.view({B, H, W, C}).permute({0, 3, 1, 2});
}

}  // namespace pictor::models::unet
