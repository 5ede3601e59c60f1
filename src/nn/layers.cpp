#include "nn/layers.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "nn/flop_counter.hpp"

namespace pictor::nn {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

Linear::Linear(ParamSource& p, const std::string& prefix, int64_t in, int64_t out, bool has_bias) {
  weight = p.get(join(prefix, "weight"), {out, in}, Init::FanIn);
  if (has_bias) bias = p.get(join(prefix, "bias"), {out}, Init::Bias);
}

at::Tensor Linear::operator()(const at::Tensor& x) const {
  const at::Tensor& w = int8.defined() ? int8.values : weight;
  if (FlopCounter::enabled())  // each output element: in_features multiply-adds
    FlopCounter::add(2.0 * double(x.numel() / x.size(-1)) * double(w.numel()));
  return int8.defined() ? linear_int8(x, int8, bias) : linear(x, weight, bias);
}

void Linear::quantize_int8() {
  if (int8.defined()) return;
  int8 = quantize_rows(weight);
  weight = at::Tensor();
}

Conv2d::Conv2d(ParamSource& p, const std::string& prefix, int64_t in, int64_t out, int64_t kernel, int64_t stride_,
               int64_t padding_, bool has_bias)
    : stride(stride_), padding(padding_) {
  weight = p.get(join(prefix, "weight"), {out, in, kernel, kernel}, Init::FanIn);
  if (has_bias) bias = p.get(join(prefix, "bias"), {out}, Init::Bias);
}

at::Tensor Conv2d::operator()(const at::Tensor& x) const {
  at::Tensor y = at::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
  if (FlopCounter::enabled())  // each output element: in_channels * k * k multiply-adds
    FlopCounter::add(2.0 * double(y.numel()) * double(weight.numel() / weight.size(0)));
  return y;
}

GroupNorm::GroupNorm(ParamSource& p, const std::string& prefix, int64_t groups_, int64_t channels, double eps_,
                     bool affine)
    : groups(groups_), eps(eps_) {
  if (groups <= 0 || channels % groups != 0)
    throw Error(prefix + ": " + std::to_string(channels) + " channels are not divisible into " +
                std::to_string(groups) + " groups");
  if (affine) {
    weight = p.get(join(prefix, "weight"), {channels}, Init::NormWeight);
    bias = p.get(join(prefix, "bias"), {channels}, Init::NormBias);
  }
}

at::Tensor GroupNorm::operator()(const at::Tensor& x) const {
  return at::group_norm(x, groups, weight, bias, eps);
}

LayerNorm::LayerNorm(ParamSource& p, const std::string& prefix, int64_t dim_, double eps_, bool has_bias)
    : dim(dim_), eps(eps_) {
  weight = p.get(join(prefix, "weight"), {dim}, Init::NormWeight);
  if (has_bias) bias = p.get(join(prefix, "bias"), {dim}, Init::NormBias);
}

at::Tensor LayerNorm::operator()(const at::Tensor& x) const {
  return at::layer_norm(x, {dim}, weight, bias, eps);
}

Embedding::Embedding(ParamSource& p, const std::string& prefix, int64_t num, int64_t dim) {
  weight = p.get(join(prefix, "weight"), {num, dim}, Init::Embedding);
}

at::Tensor Embedding::operator()(const at::Tensor& ids) const {
  return at::embedding(weight, ids);
}

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "silu" || name == "swish") return Activation::SiLU;
  if (name == "gelu") return Activation::GELU;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast") return Activation::GELUTanh;
  if (name == "quick_gelu") return Activation::QuickGELU;
  if (name == "relu") return Activation::ReLU;
  throw Unsupported(where + ": activation '" + name + "'");
}

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return at::silu(x);
    case Activation::GELU: return at::gelu(x);
    case Activation::GELUTanh: return at::gelu(x, "tanh");
    case Activation::QuickGELU: return x * at::sigmoid(x * 1.702);
    case Activation::ReLU: return at::relu(x);
  }
  return x;
}

at::Tensor& activate_(at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return at::silu_(x);
    case Activation::GELU: return x.copy_(at::gelu(x));
    case Activation::GELUTanh: return x.copy_(at::gelu(x, "tanh"));
    case Activation::QuickGELU: return x.mul_(at::sigmoid(x * 1.702));
    case Activation::ReLU: return at::relu_(x);
  }
  return x;
}

}  // namespace pictor::nn
