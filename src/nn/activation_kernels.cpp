// Built with OpenMP (CMakeLists.txt): a whole tensor is split over the threads with at::parallel_for;
// inside a parallel region (the blocks of nn::linear) it runs on the calling thread.
#include "nn/activation_kernels.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nn/avx2_math.hpp"
#include "nn/decode_kernels.hpp"

namespace pictor::nn::activation_kernels {

#ifdef PICTOR_HAVE_X86  // the kernels below are AVX2; elsewhere apply_ and gated decline
namespace {

// z as a function of x for each activation: z = a x + b x^3.
struct Gate {
  float a = 1, b = 0;
};

bool gate_of(Activation act, Gate& g) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  switch (act) {
    case Activation::SiLU: g = {1.0f, 0.0f}; return true;
    case Activation::QuickGELU: g = {1.702f, 0.0f}; return true;
    case Activation::GELUTanh: g = {2.0f * kSqrt2OverPi, 2.0f * kSqrt2OverPi * 0.044715f}; return true;
    default: return false;
  }
}

float gated_scalar(float x, Gate g) {
  const float z = x * (g.a + g.b * x * x);
  const float e = std::exp(-std::fabs(z));
  return x * (z >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e));
}

// out[i] = act(in[i]) * (mul ? mul[i] : 1); `out` may be `in`.
PICTOR_AVX2 void gated_row(const float* in, const float* mul, float* out, int64_t n, Gate g) {
  const __m256 a = _mm256_set1_ps(g.a), b = _mm256_set1_ps(g.b), one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(in + i);
    const __m256 z = _mm256_mul_ps(x, _mm256_fmadd_ps(b, _mm256_mul_ps(x, x), a));
    const __m256 e = avx2::exp_nonpositive(_mm256_or_ps(z, sign));  // exp(-|z|)
    // sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) below: no cancellation either way.
    const __m256 num = _mm256_blendv_ps(one, e, z);  // blend on the sign bit of z
    __m256 y = _mm256_mul_ps(x, _mm256_div_ps(num, _mm256_add_ps(one, e)));
    if (mul) y = _mm256_mul_ps(y, _mm256_loadu_ps(mul + i));
    _mm256_storeu_ps(out + i, y);
  }
  for (; i < n; ++i) out[i] = gated_scalar(in[i], g) * (mul ? mul[i] : 1.0f);
}

// x viewed as `rows` rows of `cols` elements, `stride` apart, with a unit last stride; false if it is
// not such a view.
bool as_rows(const at::Tensor& x, int64_t& rows, int64_t& cols, int64_t& stride) {
  if (x.dim() == 0) return false;
  cols = x.size(-1);
  rows = cols ? x.numel() / cols : 0;
  stride = x.dim() >= 2 ? x.stride(-2) : cols;
  if (cols > 1 && x.stride(-1) != 1) return false;
  for (int64_t d = x.dim() - 2; d > 0; --d)  // leading dimensions must collapse into one row index
    if (x.size(d - 1) > 1 && x.stride(d - 1) != x.stride(d) * x.size(d)) return false;
  return true;
}

// fn(first, last) over row ranges: whole tensors split over the threads, one range inside a parallel
// region.
template <class Fn>
void over_rows(int64_t rows, int64_t cols, const Fn& fn) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), fn);
}

}  // namespace
#endif

bool apply_(at::Tensor& x, Activation act) {
#ifdef PICTOR_HAVE_X86
  Gate g;
  int64_t rows = 0, cols = 0, stride = 0;
  if (!gate_of(act, g) || !avx2::cpu_has_avx2() || !decode_kernels::applicable(x) || !as_rows(x, rows, cols, stride))
    return false;
  float* base = x.data_ptr<float>();
  if (x.is_contiguous()) {  // one flat array: split it into cache-sized pieces, whatever the row length
    constexpr int64_t kPiece = 16384;
    const int64_t n = x.numel();
    at::parallel_for(0, (n + kPiece - 1) / kPiece, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* p = base + i * kPiece;
        gated_row(p, nullptr, p, std::min(kPiece, n - i * kPiece), g);
      }
    });
  } else {
    over_rows(rows, cols, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) gated_row(base + r * stride, nullptr, base + r * stride, cols, g);
    });
  }
  return true;
#else
  (void)x;
  (void)act;
  return false;
#endif
}

at::Tensor gated(const at::Tensor& gate_up, Activation act) {
#ifdef PICTOR_HAVE_X86
  Gate g;
  int64_t rows = 0, cols = 0, stride = 0;
  if (!gate_of(act, g) || !avx2::cpu_has_avx2() || !decode_kernels::applicable(gate_up) ||
      !as_rows(gate_up, rows, cols, stride) || cols % 2)
    return {};
  const int64_t half = cols / 2;
  std::vector<int64_t> shape = gate_up.sizes().vec();
  shape.back() = half;
  at::Tensor out = at::empty(shape, gate_up.options());
  const float* in = gate_up.data_ptr<float>();
  float* op = out.data_ptr<float>();
  over_rows(rows, half, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) gated_row(in + r * stride, in + r * stride + half, op + r * half, half, g);
  });
  return out;
#else
  (void)gate_up;
  (void)act;
  return {};
#endif
}

}  // namespace pictor::nn::activation_kernels
