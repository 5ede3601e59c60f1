// Int8 linear layers (see int8_linear.hpp); the one-row kernel is decode_kernels::matvec_int8, several rows
// take nn::linear's column blocks (nn/linear_blocks.hpp).
#include "nn/int8_linear.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "nn/decode_kernels.hpp"
#include "nn/layers.hpp"
#include "nn/linear_blocks.hpp"

namespace pictor::nn {

Int8Matrix quantize_rows(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.is_floating_point(), "quantize_rows: expects a floating-point [N, K] matrix");
  c10::InferenceMode guard;
  const at::Tensor wf = w.to(at::kFloat);
  at::Tensor scales = wf.abs().amax(1) / 127.0;
  scales = at::where(scales > 0, scales, at::ones_like(scales));  // an all-zero row: any scale is exact
  const at::Tensor values = at::round(wf / scales.unsqueeze(1)).clamp(-127, 127).to(at::kChar).contiguous();
  return {values, scales.contiguous()};
}

at::Tensor dequantize(const Int8Matrix& m) {
  return m.values.to(at::kFloat) * m.scales.unsqueeze(1);
}

namespace {
// Several rows (a prompt's prefill): nn::linear's column blocks, each part dequantizing its block of weight
// rows into a per-thread buffer and multiplying there, so the fp32 matrix never exists whole (for a 2B
// model's MLP that was 134 MB written and read back per product, twice, by the ATen expression).
at::Tensor blocked_product(const at::Tensor& x, const Int8Matrix& w, const at::Tensor& bias) {
  const int64_t N = w.values.size(0), K = w.values.size(1), M = x.numel() / K;
  at::Tensor out = at::empty({M, N}, x.options());
  const int8_t* values = w.values.data_ptr<int8_t>();
  const float* scales = w.scales.data_ptr<float>();
  auto dequantized_rows = [&](int64_t start, int64_t len) {
    thread_local std::vector<float> buffer;
    buffer.resize(static_cast<size_t>(len * K));
    for (int64_t n = 0; n < len; ++n) {  // the same float(q) * scale as dequantize()
      const int8_t* q = values + (start + n) * K;
      float* row = buffer.data() + n * K;
      const float s = scales[start + n];
      for (int64_t k = 0; k < K; ++k) row[k] = float(q[k]) * s;
    }
    return at::from_blob(buffer.data(), {len, K}, x.options());
  };
  column_block_products(x.reshape({M, K}), N, dequantized_rows, bias, nullptr, out);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  return out.view(shape);
}
}  // namespace

at::Tensor linear_int8(const at::Tensor& x, const Int8Matrix& w, const at::Tensor& bias) {
  const int64_t N = w.values.size(0), K = w.values.size(1);
  TORCH_CHECK(x.size(-1) == K, "linear_int8: input has ", x.size(-1), " features, the weight ", K);
  if (x.numel() == K) {  // one row: the fused kernel reads the int8 weights directly
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = N;
    if (at::Tensor y = decode_kernels::matvec_int8(w.values, w.scales, x, bias); y.defined()) return y.view(shape);
  }
  if (!decode_kernels::applicable(x) || (bias.defined() && !decode_kernels::applicable(bias)) || x.numel() == 0)
    return linear(x, dequantize(w).to(x.scalar_type()), bias);
  return blocked_product(x, w, bias);
}

}  // namespace pictor::nn
