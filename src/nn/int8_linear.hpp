#pragma once
// Int8 weights with one fp32 scale per output channel, a lower-memory format for the language model's
// linear layers when decoding: token-by-token decoding streams every weight once per token, so it runs at
// memory speed, and a quarter of the bytes is up to 4x the tokens/s.
//
// Quantization is symmetric per row: scale = max|w_row| / 127, q = round(w / scale) in [-127, 127], so
// each weight is off by at most scale / 2 (0.4 % of the row's largest magnitude). One input row runs a
// fused AVX2 kernel (int8 -> fp32 conversion and FMA, no dequantized copy); more rows (prefill, batches)
// take nn::linear's column blocks, each dequantized into a small per-thread buffer just before its product. Accuracy
// against the fp32 goldens: docs/PERFORMANCE.md.
#include <ATen/core/Tensor.h>

namespace pictor::nn {

struct Int8Matrix {
  at::Tensor values;  // int8 [N, K]
  at::Tensor scales;  // fp32 [N]
  bool defined() const { return values.defined(); }
};

// w [N, K] fp32 (CPU) -> its per-row int8 form.
Int8Matrix quantize_rows(const at::Tensor& w);
// The fp32 matrix the int8 form stands for: values * scales[:, None].
at::Tensor dequantize(const Int8Matrix& m);
// y = x W^T + b over the last dimension of x, W given by its int8 form. Inference only.
at::Tensor linear_int8(const at::Tensor& x, const Int8Matrix& w, const at::Tensor& bias = {});

}  // namespace pictor::nn
