#pragma once
// Internal to nn/: the column-block form of nn::linear's products, shared with the int8 layers.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "nn/layers.hpp"

namespace pictor::nn {

// The [len, K] rows [start, start + len) of a weight matrix; called once per block, on the thread that
// multiplies it (the int8 layers dequantize the block there).
using WeightRows = std::function<at::Tensor(int64_t start, int64_t len)>;

// out[:, block] = x2 rows(block)^T + bias[block] (then `then`, if given) for the output columns split into
// 8 fixed blocks (a multiple of 16 wide), each one single-threaded BLAS call; the blocks depend only on
// N, so the result does not depend on the thread count. x2 [M, K], out [M, N].
void column_block_products(const at::Tensor& x2, int64_t N, const WeightRows& rows, const at::Tensor& bias,
                           const Activation* then, at::Tensor& out);

}  // namespace pictor::nn
