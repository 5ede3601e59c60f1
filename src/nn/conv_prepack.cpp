#include "nn/conv_prepack.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "nn/flop_counter.hpp"
#include "nn/winograd_conv.hpp"

namespace pictor::nn {

namespace {
std::atomic<bool> g_prepack{true};
}

void set_conv_prepacking(bool on) {
  g_prepack = on;
}
bool conv_prepacking() {
  return g_prepack;
}

struct PrepackedConv2d::Cache {
  std::mutex mutex;
  Conv2d conv;        // conv.weight is undefined while released
  at::Tensor packed;  // oneDNN (MkldnnCPU) tensor
  // The weight this copy was made from: an in-place edit (e.g. merging a LoRA) bumps the version and
  // triggers a fresh reorder.
  const void* source = nullptr;
  int64_t version = 0;
  bool failed = false;                // this libtorch cannot pack: stay on the plain path
  int64_t fan_in = 0;                 // in_channels * k * k, for the FLOP counter
  std::vector<int64_t> weight_sizes;  // known while the plain weight is released

  // The plain weight, rebuilt from the packed copy when it was released. Caller holds the mutex.
  const at::Tensor& plain_weight() {
    if (!conv.weight.defined()) {
      at::Tensor dense;
      {
        c10::InferenceMode guard;  // oneDNN tensors cannot pass through the autograd dispatch
        dense = packed.to_dense();
      }
      // A normal tensor again (an inference tensor could not be saved for backward).
      conv.weight = c10::InferenceMode::is_enabled() ? dense : dense.clone();
    }
    return conv.weight;
  }
};

PrepackedConv2d::PrepackedConv2d(Conv2d conv) : cache_(std::make_shared<Cache>()) {
  cache_->fan_in = conv.weight.numel() / std::max<int64_t>(conv.weight.size(0), 1);
  cache_->weight_sizes = conv.weight.sizes().vec();
  cache_->conv = std::move(conv);
}

at::Tensor PrepackedConv2d::weight() const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  return cache_->plain_weight();
}

bool PrepackedConv2d::plain_weight_released() const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  return !cache_->conv.weight.defined();
}

at::Tensor PrepackedConv2d::operator()(const at::Tensor& x) const {
  at::Tensor y = run(x);
  if (FlopCounter::enabled())  // same count as nn::Conv2d: in_channels * k * k multiply-adds per output
    FlopCounter::add(2.0 * double(y.numel()) * double(cache_->fan_in));
  return y;
}

at::Tensor PrepackedConv2d::run(const at::Tensor& x) const {
  Cache& c = *cache_;
  const std::vector<int64_t> padding{c.conv.padding, c.conv.padding}, stride{c.conv.stride, c.conv.stride};
  const std::vector<int64_t> dilation{1, 1};
  at::Tensor weight, packed, bias;  // what the chosen path needs, taken under the lock
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    bias = c.conv.bias;
    // Large enough for Winograd, which transforms the plain weight itself on every call.
    if (winograd::worthwhile(x, c.weight_sizes, c.conv.stride, c.conv.padding)) weight = c.plain_weight();
  }
  if (weight.defined()) return winograd::conv3x3(x, weight, bias);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    const bool usable = g_prepack && !c.failed && at::hasMKLDNN() && x.is_cpu() && x.scalar_type() == at::kFloat &&
                        (c.packed.defined() || (c.conv.weight.is_cpu() && c.conv.weight.scalar_type() == at::kFloat)) &&
                        (!at::GradMode::is_enabled() || c10::InferenceMode::is_enabled());
    if (usable && c.conv.weight.defined()) {
      const void* source = c.conv.weight.data_ptr();
      // Inference tensors have no version counter (they cannot be modified outside inference mode).
      const int64_t version = c.conv.weight.is_inference() ? 0 : c.conv.weight._version();
      if (!c.packed.defined() || c.source != source || c.version != version) {
        try {
          c.packed = at::mkldnn_reorder_conv2d_weight(c.conv.weight.to_mkldnn(), padding, stride, dilation, 1);
          c.source = source, c.version = version;
        } catch (const c10::Error&) {
          c.failed = true;
          c.packed = at::Tensor();
        }
      }
      // Nobody else can see (or edit) a weight only this layer references: keep just the packed copy.
      if (c.packed.defined() && c.conv.weight.use_count() == 1 && c.conv.weight.storage().use_count() == 1)
        c.conv.weight = at::Tensor();
    }
    if (usable && c.packed.defined())
      packed = c.packed;
    else
      weight = c.plain_weight();
  }
  if (!packed.defined()) return at::conv2d(x, weight, bias, stride, padding);
  return at::mkldnn_convolution(x.contiguous(), packed, bias, padding, stride, dilation, 1);
}

}  // namespace pictor::nn
