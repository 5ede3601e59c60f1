#pragma once
// 3x3 convolutions (stride 1, padding 1) as Winograd F(2x2, 3x3) for CPU inference.
//
// Each 2x2 block of outputs is computed from a 4x4 input tile with 16 multiplications per channel pair
// instead of 36: the tiles and the weights are transformed into a 4x4 "Winograd domain" where the
// convolution becomes 16 independent matrix products [tiles x C] * [C x K], and the products are
// transformed back (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015). At the
// 64x64 and 32x32 levels of an SD UNet these products are large enough for BLAS to run at full speed, so
// the convolution takes about half the time of oneDNN's direct one; at low resolutions the products get too
// small and the direct convolution stays faster (see `worthwhile`).
//
// The transforms only add, subtract and halve, so fp32 results stay within a few ulps of the direct
// convolution (tested against at::conv2d). The work is split into blocks whose shape depends only on the
// tensor shapes, each block's products run single-threaded, so the result is the same on any thread count.
#include <ATen/core/Tensor.h>

namespace pictor::nn::winograd {

// Whether `x` [N, C, H, W] convolved with a weight of `weight_sizes` [K, C, 3, 3] at this stride and
// padding is expected to run faster through conv3x3 than through oneDNN on this CPU: a 3x3 kernel at
// stride 1 and padding 1, fp32 CPU input, no autograd, at least 64 input and output channels and at least
// 256 output tiles (measured: at 16x16 with 1280 channels the per-call weight transform and the thin
// products make it slower). Always false while set_enabled(false).
bool worthwhile(const at::Tensor& x, at::IntArrayRef weight_sizes, int64_t stride, int64_t padding);

// Process-wide switch (default on), e.g. to compare against oneDNN in a benchmark.
void set_enabled(bool on);
bool enabled();

// The convolution (stride 1, padding 1, bias may be undefined); x must be an fp32 CPU tensor [N, C, H, W].
// Returns a contiguous [N, K, H, W] tensor.
at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// The same in two steps, for callers that keep the transformed weights: U = transform_weights(weight)
// ([C, 16, K], 16/9 the size of the weight), then conv3x3_transformed(x, U, bias).
at::Tensor transform_weights(const at::Tensor& weight);
at::Tensor conv3x3_transformed(const at::Tensor& x, const at::Tensor& U, const at::Tensor& bias);

}  // namespace pictor::nn::winograd
