#include "nn/layers.hpp"

#include <ATen/ATen.h>

#include <vector>

#include "core/error.hpp"
#include "nn/activation_kernels.hpp"
#include "nn/flop_counter.hpp"

namespace pictor::nn {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

Linear::Linear(ParamSource& p, const std::string& prefix, int64_t in, int64_t out, bool has_bias) {
  weight = p.get(join(prefix, "weight"), {out, in}, Init::FanIn);
  if (has_bias) bias = p.get(join(prefix, "bias"), {out}, Init::Bias);
}

namespace {
void count_flops(const at::Tensor& x, const Linear& l) {
  if (FlopCounter::enabled())  // each output element: in_features multiply-adds
    FlopCounter::add(2.0 * double(x.numel() / x.size(-1)) *
                     double((l.int8.defined() ? l.int8.values : l.weight).numel()));
}
}  // namespace

at::Tensor Linear::operator()(const at::Tensor& x) const {
  count_flops(x, *this);
  return int8.defined() ? linear_int8(x, int8, bias) : linear(x, weight, bias);
}

at::Tensor Linear::operator()(const at::Tensor& x, Activation then) const {
  count_flops(x, *this);
  return int8.defined() ? activate(linear_int8(x, int8, bias), then) : linear(x, weight, bias, then);
}

Linear join_outputs(std::initializer_list<Linear*> parts) {
  if (parts.size() == 0) throw Error("join_outputs: no layers to join");
  const Linear& first = **parts.begin();
  std::vector<at::Tensor> weights, biases;
  for (const Linear* l : parts) {
    if (l->int8.defined() || !l->weight.defined()) throw Error("join_outputs: only fp32 layers can be joined");
    if (l->weight.size(1) != first.weight.size(1) || l->bias.defined() != first.bias.defined())
      throw Error("join_outputs: the layers differ in in_features or in having a bias");
    weights.push_back(l->weight);
    if (l->bias.defined()) biases.push_back(l->bias);
  }
  Linear joined;
  joined.weight = at::cat(weights, 0);
  if (first.bias.defined()) joined.bias = at::cat(biases, 0);
  int64_t row = 0;
  for (Linear* l : parts) {
    const int64_t n = l->weight.size(0);
    l->weight = joined.weight.narrow(0, row, n);
    if (l->bias.defined()) l->bias = joined.bias.narrow(0, row, n);
    row += n;
  }
  return joined;
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

at::Tensor gated(const at::Tensor& gate_up, Activation a) {
  if (gate_up.size(-1) % 2) throw Error("gated: the joined gate/up projection has an odd width");
  if (at::Tensor fused = activation_kernels::gated(gate_up, a); fused.defined()) return fused;
  const auto halves = gate_up.chunk(2, -1);
  return activate(halves[0], a) * halves[1];
}

at::Tensor& activate_(at::Tensor& x, Activation a) {
  if (activation_kernels::apply_(x, a)) return x;
  switch (a) {
    case Activation::SiLU: return at::silu_(x);
    case Activation::GELU: return at::gelu_(x);
    case Activation::GELUTanh: return at::gelu_(x, "tanh");
    case Activation::QuickGELU: return x.mul_(at::sigmoid(x * 1.702));
    case Activation::ReLU: return at::relu_(x);
  }
  return x;
}

}  // namespace pictor::nn
