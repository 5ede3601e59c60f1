// Int8 linear layers (see int8_linear.hpp); the one-row kernel is decode_kernels::matvec_int8.
#include "nn/int8_linear.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "nn/decode_kernels.hpp"
#include "nn/layers.hpp"

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

at::Tensor linear_int8(const at::Tensor& x, const Int8Matrix& w, const at::Tensor& bias) {
  const int64_t N = w.values.size(0), K = w.values.size(1);
  TORCH_CHECK(x.size(-1) == K, "linear_int8: input has ", x.size(-1), " features, the weight ", K);
  if (x.numel() == K) {  // one row: the fused kernel reads the int8 weights directly
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = N;
    if (at::Tensor y = decode_kernels::matvec_int8(w.values, w.scales, x, bias); y.defined()) return y.view(shape);
  }
  return linear(x, dequantize(w).to(x.scalar_type()), bias);
}

}  // namespace pictor::nn
