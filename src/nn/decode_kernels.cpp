// Compiled with -fopenmp (see CMakeLists.txt): at::parallel_for is a header template that only forks
// when the translation unit itself is built with OpenMP; it then shares libtorch's OpenMP thread pool.
#include "nn/decode_kernels.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "nn/avx2_math.hpp"
#include "nn/parallel_parts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace pictor::nn::decode_kernels {

namespace {
// Rows of work per parallel chunk so that one chunk streams at least ~64 KiB (forking costs microseconds).
int64_t grain_for(int64_t row_floats) {
  return std::max<int64_t>(1, (16 << 10) / std::max<int64_t>(row_floats, 1));
}
}  // namespace

#ifdef PICTOR_HAVE_X86

namespace {
using avx2::cpu_has_avx2;
using avx2::exp_nonpositive;
using avx2::FloatRow;
using avx2::hmax;
using avx2::hsum;
using avx2::Int8Row;

PICTOR_AVX2 inline float dot(const float* a, const float* b, int64_t n) {
  return avx2::dot(FloatRow{a}, b, n);
}

// y += w * x over n elements.
PICTOR_AVX2 inline void axpy(float w, const float* x, float* y, int64_t n) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += w * x[i];
}

PICTOR_AVX2 void softmax_row(const float* in, float* out, int64_t n) {
  __m256 mv = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(in + i));
  float mx = hmax(mv);
  for (int64_t j = i; j < n; ++j) mx = std::max(mx, in[j]);
  const __m256 mxv = _mm256_set1_ps(mx);
  __m256 sv = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(in + i), mxv));
    _mm256_storeu_ps(out + i, e);
    sv = _mm256_add_ps(sv, e);
  }
  float sum = hsum(sv);
  for (int64_t j = i; j < n; ++j) sum += (out[j] = std::exp(in[j] - mx));
  const __m256 inv = _mm256_set1_ps(1.f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
  for (int64_t j = i; j < n; ++j) out[j] *= 1.f / sum;
}

// y[n] = (W[n] . x) * scales[n] + bias[n] for rows [begin, end); W rows of fp32 (FloatRow, no scales) or
// int8 (Int8Row, widened eight at a time).
template <class Row, class T>
PICTOR_AVX2 void matvec_rows(const T* W, const float* scales, const float* x, const float* bias, float* y,
                             int64_t begin, int64_t end, int64_t K) {
  for (int64_t n = begin; n < end; ++n) {
    float s = avx2::dot(Row{W + n * K}, x, K);
    if (scales) s *= scales[n];
    y[n] = s + (bias ? bias[n] : 0.f);
  }
}

PICTOR_AVX2 void attention_row(const float* q, const float* k, const float* v, const float* mask, int64_t mask_stride,
                               int64_t S, int64_t D, int64_t k_stride, int64_t v_stride, float scale, float* scores,
                               float* out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t s = 0; s < S; ++s) {
    float x = dot(q, k + s * k_stride, D) * scale;
    if (mask) x += mask[s * mask_stride];
    scores[s] = x;
    mx = std::max(mx, x);
  }
  float sum = 0.f;
  for (int64_t s = 0; s < S; ++s) sum += (scores[s] = std::exp(scores[s] - mx));
  std::fill(out, out + D, 0.f);
  const float inv = 1.f / sum;
  for (int64_t s = 0; s < S; ++s) axpy(scores[s] * inv, v + s * v_stride, out, D);
}

}  // namespace

#else  // not x86: the matvec and attention kernels are AVX2-only; callers take the ATen path

namespace {
bool cpu_has_avx2() {
  return false;
}
struct FloatRow {};
struct Int8Row {};
template <class Row, class T>
void matvec_rows(const T*, const float*, const float*, const float*, float*, int64_t, int64_t, int64_t) {}
void attention_row(const float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                   float, float*, float*) {}
void softmax_row(const float*, float*, int64_t) {}
}  // namespace

#endif

bool applicable(const at::Tensor& a) {
  return a.defined() && a.device().is_cpu() && a.scalar_type() == at::kFloat &&
         !(a.requires_grad() && at::GradMode::is_enabled());
}

namespace {
// The one-row product with a contiguous [N, K] matrix W (fp32, or int8 with per-row scales), after the
// checks common to both; undefined if x or bias do not fit.
template <class Row, class T>
at::Tensor one_row_product(const T* W, const float* scales, int64_t N, int64_t K, const at::Tensor& x,
                           const at::Tensor& bias) {
  if (!cpu_has_avx2() || !applicable(x) || x.numel() != K ||
      (bias.defined() && (!applicable(bias) || bias.numel() != N)))
    return {};
  const at::Tensor xc = x.reshape({K}).contiguous();
  const at::Tensor bc = bias.defined() ? bias.contiguous() : at::Tensor();
  at::Tensor y = at::empty({N}, x.options());
  const float* xp = xc.data_ptr<float>();
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Blocks of ~64 KiB of weights taken one at a time by the threads (nn/parallel_parts.hpp): a token's
  // products are short, so a fixed half per thread left one core waiting whenever the other was slowed.
  const int64_t rows = std::max<int64_t>(1, (int64_t(64) << 10) / std::max<int64_t>(K * int64_t(sizeof(T)), 1));
  parallel_parts((N + rows - 1) / rows, [&](int64_t part) {
    matvec_rows<Row>(W, scales, xp, bp, yp, part * rows, std::min(N, (part + 1) * rows), K);
  });
  return y;
}
}  // namespace

at::Tensor matvec(const at::Tensor& weight, const at::Tensor& x, const at::Tensor& bias) {
  if (!applicable(weight) || weight.dim() != 2 || !weight.is_contiguous()) return {};
  return one_row_product<FloatRow>(weight.data_ptr<float>(), nullptr, weight.size(0), weight.size(1), x, bias);
}

at::Tensor matvec_int8(const at::Tensor& values, const at::Tensor& scales, const at::Tensor& x,
                       const at::Tensor& bias) {
  if (values.dim() != 2 || !values.is_cpu() || values.scalar_type() != at::kChar || !values.is_contiguous() ||
      !applicable(scales) || !scales.is_contiguous() || scales.numel() != values.size(0))
    return {};
  return one_row_product<Int8Row>(values.data_ptr<int8_t>(), scales.data_ptr<float>(), values.size(0), values.size(1),
                                  x, bias);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!applicable(x) || !applicable(weight) || x.dim() < 1) return {};
  const int64_t C = x.size(-1);
  if (weight.numel() != C || C == 0) return {};
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor y = at::empty_like(xc);
  const int64_t rows = xc.numel() / C;
  const float* xp = xc.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, rows, grain_for(C), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* in = xp + r * C;
      float* out = yp + r * C;
      float ss = 0.f;
      for (int64_t i = 0; i < C; ++i) ss += in[i] * in[i];
      const float inv = 1.f / std::sqrt(ss / float(C) + float(eps));
      for (int64_t i = 0; i < C; ++i) out[i] = wp[i] * (in[i] * inv);
    }
  });
  return y;
}

bool rotate_half_inplace(at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!applicable(x) || x.dim() != 4 || x.stride(3) != 1 || !applicable(cos) || !applicable(sin)) return false;
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  if (D % 2 || cos.dim() != 3 || cos.sizes() != sin.sizes() || cos.size(1) != T || cos.size(2) != D ||
      (cos.size(0) != B && cos.size(0) != 1))
    return false;
  const at::Tensor cc = cos.contiguous(), sc = sin.contiguous();
  float* xp = x.data_ptr<float>();
  const float* cp = cc.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();
  const bool per_batch = cos.size(0) == B;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t table = ((per_batch ? b : 0) * T + t) * D;
      const float* c = cp + table;
      const float* s = sp + table;
      for (int64_t h = 0; h < H; ++h) {
        float* row = xp + b * x.stride(0) + t * x.stride(1) + h * x.stride(2);
        for (int64_t i = 0; i < half; ++i) {  // x * cos + cat(-x2, x1) * sin, one pair at a time
          const float x1 = row[i], x2 = row[i + half];
          row[i] = x1 * c[i] - x2 * s[i];
          row[i + half] = x2 * c[i + half] + x1 * s[i + half];
        }
      }
    }
  return true;
}

bool softmax_rows(const at::Tensor& in, at::Tensor& out) {
  if (!cpu_has_avx2() || !applicable(in) || !applicable(out) || !in.is_contiguous() || !out.is_contiguous() ||
      in.sizes() != out.sizes() || in.dim() < 1)
    return false;
  const int64_t n = in.size(-1), rows = n ? in.numel() / n : 0;
  const float* ip = in.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) softmax_row(ip + r * n, op + r * n, n);
  return true;
}

at::Tensor small_query_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                 double scale) {
  if (!cpu_has_avx2() || !applicable(q) || !applicable(k) || !applicable(v) || q.dim() != 4 || k.dim() != 4 ||
      v.dim() != 4 || (mask.defined() && !applicable(mask)))
    return {};
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), S = k.size(2);
  if (k.size(0) != B || v.size(0) != B || k.size(1) != H || v.size(1) != H || k.size(3) != D || v.size(2) != S ||
      v.size(3) != D || S == 0 || q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1)
    return {};
  at::Tensor m;
  if (mask.defined()) {
    if (mask.dim() > 4) return {};
    try {
      m = mask.expand({B, H, Tq, S});
    } catch (const c10::Error&) {
      return {};
    }
  }
  at::Tensor out = at::empty({B, H, Tq, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* mp = m.defined() ? m.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  const float sc = float(scale);
  parallel_parts(B * H * Tq, [&](int64_t r) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(S));
    const int64_t b = r / (H * Tq), h = (r / Tq) % H, t = r % Tq;
    const float* qr = qp + b * q.stride(0) + h * q.stride(1) + t * q.stride(2);
    const float* kr = kp + b * k.stride(0) + h * k.stride(1);
    const float* vr = vp + b * v.stride(0) + h * v.stride(1);
    const float* mr = mp ? mp + b * m.stride(0) + h * m.stride(1) + t * m.stride(2) : nullptr;
    attention_row(qr, kr, vr, mr, mp ? m.stride(3) : 0, S, D, k.stride(2), v.stride(2), sc, scores.data(), op + r * D);
  });
  return out;
}

}  // namespace pictor::nn::decode_kernels
