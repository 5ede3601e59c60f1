// Int8 linear layers (see int8_linear.hpp). Compiled with OpenMP (see CMakeLists.txt) so
// at::parallel_for forks.
#include "nn/int8_linear.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "nn/avx2_math.hpp"
#include "nn/layers.hpp"

namespace pictor::nn {

namespace {
constexpr int64_t kRowsPerTask = 64;  // output rows per parallel task: fixed, so the threads split no sums
}  // namespace

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
  const int64_t M = x.numel() / K;
#ifdef PICTOR_HAVE_X86
  if (M == 1 && avx2::cpu_has_avx2() && x.is_cpu() && x.scalar_type() == at::kFloat &&
      (!bias.defined() || bias.scalar_type() == at::kFloat)) {
    const at::Tensor xc = x.reshape({K}).contiguous(), bc = bias.defined() ? bias.contiguous() : bias;
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = N;
    at::Tensor y = at::empty({N}, x.options());
    const int8_t* q = w.values.data_ptr<int8_t>();
    const float *xp = xc.data_ptr<float>(), *sp = w.scales.data_ptr<float>();
    const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
    float* yp = y.data_ptr<float>();
    const int64_t tasks = (N + kRowsPerTask - 1) / kRowsPerTask;
    at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t n = t0 * kRowsPerTask; n < std::min(N, t1 * kRowsPerTask); ++n)
        // Eight weights per step sign-extended and converted to fp32, then the usual FMA dot product.
        yp[n] = avx2::dot(avx2::Int8Row{q + n * K}, xp, K) * sp[n] + (bp ? bp[n] : 0.0f);
    });
    return y.view(shape);
  }
#endif
  return linear(x, dequantize(w).to(x.scalar_type()), bias);
}

}  // namespace pictor::nn
