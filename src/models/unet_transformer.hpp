#pragma once
// The UNet's spatial transformer (diffusers Transformer2DModel with continuous input): GroupNorm,
// proj_in, BasicTransformerBlocks (self-attention, cross-attention to the text, GEGLU feed-forward, each
// pre-LayerNorm with a residual), proj_out, plus the input as residual.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models::unet {

// diffusers Attention with the default processor: bias-free q/k/v projections, biased to_out.0.
// Its projections run joined (nn::join_outputs) for the use the block makes of it: q/k/v as one product
// for self-attention, k/v as one product over the context for cross-attention.
struct Attention {
  nn::Linear to_q, to_k, to_v, to_out;
  nn::Linear joined;  // [q, k, v] (self-attention) or [k, v] (cross-attention)
  int64_t heads = 1;
  bool self_attention = true;
  Attention() = default;
  // `context_dim` is the width of the tokens attended to (query_dim for self-attention); `self` says
  // whether the block calls it without a context.
  Attention(nn::ParamSource& p, const std::string& prefix, int64_t query_dim, int64_t context_dim, int64_t heads,
            int64_t head_dim, bool self);
  // x [B, T, query_dim]; context [B, S, context_dim], or undefined for self-attention.
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& context) const;
};

// FeedForward with GEGLU: net.0.proj doubles the width into (value, gate), value * gelu(gate), net.2.
struct GegluFeedForward {
  nn::Linear proj, out;
  GegluFeedForward() = default;
  GegluFeedForward(nn::ParamSource& p, const std::string& prefix, int64_t dim, int64_t inner);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct BasicTransformerBlock {
  nn::LayerNorm norm1, norm2, norm3;
  Attention attn1, attn2;
  GegluFeedForward ff;
  bool only_cross_attention = false;  // attn1 attends to the text as well
  BasicTransformerBlock() = default;
  BasicTransformerBlock(nn::ParamSource& p, const std::string& prefix, int64_t dim, int64_t heads, int64_t head_dim,
                        int64_t cross_dim, bool only_cross_attention);
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& context) const;
};

struct Transformer2DModel {
  nn::GroupNorm norm;
  // proj_in/proj_out: Linear (use_linear_projection) or 1x1 Conv2d. A 1x1 conv over NCHW equals a linear
  // map over channels-last tokens, so both are applied as at::linear on the token layout; only the stored
  // weight shape differs ([out, in] vs [out, in, 1, 1]).
  at::Tensor proj_in_w, proj_in_b, proj_out_w, proj_out_b;
  std::vector<BasicTransformerBlock> blocks;
  Transformer2DModel() = default;
  Transformer2DModel(nn::ParamSource& p, const std::string& prefix, int64_t channels, int64_t heads, int64_t layers,
                     int64_t cross_dim, int64_t groups, bool linear_projection, bool only_cross_attention);
  // x [B, C, H, W], context [B, S, cross_dim] -> [B, C, H, W]
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& context) const;
};

}  // namespace pictor::models::unet
