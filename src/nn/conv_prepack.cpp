#include "nn/conv_prepack.hpp"

#include <ATen/ATen.h>

#include <atomic>
#include <mutex>

#include "nn/flop_counter.hpp"

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
  at::Tensor packed;  // oneDNN (MkldnnCPU) tensor
  // The weight this copy was made from: an in-place edit (e.g. merging a LoRA) bumps the version and
  // triggers a fresh reorder.
  const void* source = nullptr;
  int64_t version = 0;
  bool failed = false;  // this libtorch cannot pack: stay on the plain path
};

PrepackedConv2d::PrepackedConv2d(Conv2d conv) : conv_(std::move(conv)), cache_(std::make_shared<Cache>()) {}

at::Tensor PrepackedConv2d::operator()(const at::Tensor& x) const {
  const bool usable = cache_ && g_prepack && at::hasMKLDNN() && x.is_cpu() && x.scalar_type() == at::kFloat &&
                      conv_.weight.is_cpu() && conv_.weight.scalar_type() == at::kFloat &&
                      (!at::GradMode::is_enabled() || c10::InferenceMode::is_enabled());
  if (!usable) return conv_(x);
  const std::vector<int64_t> stride{conv_.stride, conv_.stride}, padding{conv_.padding, conv_.padding}, dilation{1, 1};
  at::Tensor packed;
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->failed) return conv_(x);
    const void* source = conv_.weight.data_ptr();
    // Inference tensors have no version counter (they cannot be modified outside inference mode).
    const int64_t version = conv_.weight.is_inference() ? 0 : conv_.weight._version();
    if (!cache_->packed.defined() || cache_->source != source || cache_->version != version) {
      try {
        cache_->packed = at::mkldnn_reorder_conv2d_weight(conv_.weight.to_mkldnn(), padding, stride, dilation, 1);
        cache_->source = source, cache_->version = version;
      } catch (const c10::Error&) {
        cache_->failed = true;
        cache_->packed = at::Tensor();
        return conv_(x);
      }
    }
    packed = cache_->packed;
  }
  at::Tensor y = at::mkldnn_convolution(x.contiguous(), packed, conv_.bias, padding, stride, dilation, 1);
  if (FlopCounter::enabled())  // same count as nn::Conv2d: in_channels * k * k multiply-adds per output
    FlopCounter::add(2.0 * double(y.numel()) * double(conv_.weight.numel() / conv_.weight.size(0)));
  return y;
}

}  // namespace pictor::nn
