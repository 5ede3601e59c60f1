#pragma once
// Conv2d with a oneDNN weight cache for inference. libtorch's CPU conv2d reorders the weight into
// oneDNN's blocked layout on every call; for the low-resolution, high-channel convs of a UNet
// (1280 channels at 8x8) that reorder costs more than the convolution itself (measured: 18 vs 59
// GFLOP/s). This wrapper reorders once, on the first call without autograd, and reuses the copy; with
// autograd enabled, on other devices or without oneDNN it is a plain nn::Conv2d. Results are identical.
// The cached copy costs as much memory as the weight itself.
#include <ATen/core/Tensor.h>

#include <memory>

#include "nn/layers.hpp"

namespace pictor::nn {

class PrepackedConv2d {
 public:
  PrepackedConv2d() = default;
  explicit PrepackedConv2d(Conv2d conv);
  at::Tensor operator()(const at::Tensor& x) const;
  const Conv2d& conv() const { return conv_; }
  bool defined() const { return conv_.weight.defined(); }

 private:
  struct Cache;
  Conv2d conv_;
  std::shared_ptr<Cache> cache_;  // shared: copies of this layer share one packed weight
};

// Process-wide switch (default on), e.g. to trade speed for memory.
void set_conv_prepacking(bool on);
bool conv_prepacking();

}  // namespace pictor::nn
