#pragma once
// Basic layers as plain structs of tensors. They are built from a ParamSource under a checkpoint name
// prefix (e.g. "down_blocks.0.resnets.1.conv1") and are pure functions of their input, written with
// differentiable ATen ops so autograd can train through them.
#include <ATen/core/Tensor.h>

#include <initializer_list>
#include <string>

#include "nn/int8_linear.hpp"
#include "nn/param_source.hpp"

namespace pictor::nn {

// Joins checkpoint name parts: join("a.b", "c") == "a.b.c"; an empty prefix yields the name.
std::string join(const std::string& prefix, const std::string& name);

// Activations by their config names ("silu"/"swish", "gelu", "gelu_pytorch_tanh"/"gelu_new",
// "quick_gelu", "relu"); throws Unsupported for anything else, naming `where`.
enum class Activation { SiLU, GELU, GELUTanh, QuickGELU, ReLU };
Activation parse_activation(const std::string& name, const std::string& where);
at::Tensor activate(const at::Tensor& x, Activation a);
// In place (x is overwritten and returned); only for tensors autograd does not need.
at::Tensor& activate_(at::Tensor& x, Activation a);
// The gated unit of Llama-style MLPs: a(first half) * second half of the last dimension of `gate_up` (the
// joined gate and up projections), in one pass at inference.
at::Tensor gated(const at::Tensor& gate_up, Activation a);

// y = x W^T + b over the last dimension of x (at::linear); see nn/linear.cpp for how the CPU runs it.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});
// activation(x W^T + b). At inference on the CPU the activation runs on each block of the product as soon
// as it is computed, while the block is still in cache (an MLP's hidden layer is the largest tensor of a
// transformer block; a separate pass would stream it through memory twice more).
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Activation then);

struct Linear {
  at::Tensor weight, bias;  // weight [out, in]; bias may be undefined
  Int8Matrix int8;          // set by quantize_int8(), which then releases `weight`
  Linear() = default;
  Linear(ParamSource& p, const std::string& prefix, int64_t in, int64_t out, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
  at::Tensor operator()(const at::Tensor& x, Activation then) const;  // then(this(x)), fused as nn::linear
  // Replaces the fp32 weight by its per-row int8 form (nn/int8_linear.hpp); inference only from then on.
  void quantize_int8();
};

// Joins fp32 linear layers that read the same input into one product whose output is theirs side by side
// (e.g. attention's q, k and v projections: one pass over the input and one BLAS call instead of three).
// Each part's weight and bias become views into the joined tensors, so no memory is added and the parts
// still work on their own. All parts need the same in_features and either all or none a bias.
Linear join_outputs(std::initializer_list<Linear*> parts);

struct Conv2d {
  at::Tensor weight, bias;
  int64_t stride = 1, padding = 0;
  Conv2d() = default;
  Conv2d(ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
         int64_t padding = 0, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct GroupNorm {
  at::Tensor weight, bias;
  int64_t groups = 32;
  double eps = 1e-5;
  GroupNorm() = default;
  GroupNorm(ParamSource& p, const std::string& prefix, int64_t groups, int64_t channels, double eps,
            bool affine = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct LayerNorm {
  at::Tensor weight, bias;
  int64_t dim = 0;
  double eps = 1e-5;
  LayerNorm() = default;
  LayerNorm(ParamSource& p, const std::string& prefix, int64_t dim, double eps, bool has_bias = true);
  at::Tensor operator()(const at::Tensor& x) const;
};

struct Embedding {
  at::Tensor weight;  // [num, dim]
  Embedding() = default;
  Embedding(ParamSource& p, const std::string& prefix, int64_t num, int64_t dim);
  at::Tensor operator()(const at::Tensor& ids) const;
};

}  // namespace pictor::nn
