#pragma once
// Conv2d with a oneDNN weight cache for inference. libtorch's CPU conv2d reorders the weight into
// oneDNN's blocked layout on every call; for the low-resolution, high-channel convs of a UNet
// (1280 channels at 8x8) that reorder costs more than the convolution itself (measured: 18 vs 59
// GFLOP/s). This wrapper reorders once, on the first call without autograd, and reuses the copy; with
// autograd enabled, on other devices or without oneDNN it is a plain nn::Conv2d. Results are identical.
//
// A 3x3 stride-1 call large enough for nn/winograd_conv.hpp (enough channels and output tiles, e.g. the
// 64x64 and 32x32 levels of an SD UNet and most of the VAE decoder) runs as a Winograd convolution from
// the plain weight instead: 1.1-1.75x faster there (measured per shape), within a few ulp of the direct result. Such a
// layer keeps its plain weight (the Winograd transform is redone per call, so no extra copy is held).
//
// Memory: once packed, the plain weight is released when this layer holds the only reference to it (a
// model loaded for inference), so the packed copy replaces it instead of doubling the conv weights
// (~1.6 GiB for SD 1.5). Whoever else holds the weight -- a training loop, a test editing it in place --
// keeps it alive, and then an in-place edit is noticed and re-packed. A released weight is rebuilt from
// the packed copy if the plain path is ever needed again.
#include <ATen/core/Tensor.h>

#include <memory>

#include "nn/layers.hpp"

namespace pictor::nn {

class PrepackedConv2d {
 public:
  PrepackedConv2d() = default;
  explicit PrepackedConv2d(Conv2d conv);
  at::Tensor operator()(const at::Tensor& x) const;
  bool defined() const { return cache_ != nullptr; }
  // The plain [out, in, k, k] weight (rebuilt from the packed copy if it was released).
  at::Tensor weight() const;
  // Whether the plain weight is currently released (only the packed copy is held).
  bool plain_weight_released() const;

 private:
  struct Cache;
  at::Tensor run(const at::Tensor& x) const;  // operator() without the FLOP count
  std::shared_ptr<Cache> cache_;              // shared: copies of this layer share one packed weight
};

// Process-wide switch (default on), e.g. to trade speed for memory.
void set_conv_prepacking(bool on);
bool conv_prepacking();

}  // namespace pictor::nn
