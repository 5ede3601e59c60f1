// Fused attention kernel (see flash_attention.hpp). Compiled with OpenMP (see CMakeLists.txt) so
// at::parallel_for forks.
#include "nn/flash_attention.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nn/avx2_math.hpp"
#include "nn/parallel_parts.hpp"

namespace pictor::nn::flash_attention {

#ifdef PICTOR_HAVE_X86

namespace {
using avx2::exp_nonpositive;
using avx2::hmax;
using avx2::hsum;

constexpr int64_t kRows = 6;          // query rows per micro-block (6 x 2 score vectors = 12 registers)
constexpr int64_t kKeyTile = 16;      // keys per score tile (two vectors)
constexpr int64_t kKeyChunk = 256;    // keys per online-softmax step: K^T and V chunks of <= 256 x D stay in L2
constexpr int64_t kRowsPerTask = 96;  // query rows per task (16 micro-blocks)
constexpr int64_t kMaxHeadDim = 512;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// S[r][j] = sum_d Q[r][d] K[j][d] for 6 rows and `keys` (a multiple of 16) keys. Q rows of length D
// (contiguous); Kp holds the keys in tiles of 16, each tile [D][16] contiguous, so a tile streams in order.
PICTOR_AVX2 void score_tiles(const float* Q, int64_t D, const float* Kp, int64_t keys, float* S, int64_t lds) {
  for (int64_t j = 0; j < keys; j += kKeyTile) {
    __m256 acc[kRows][2];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float* kp = Kp + j * D;
    for (int64_t d = 0; d < D; ++d, kp += kKeyTile) {
      const __m256 k0 = _mm256_loadu_ps(kp), k1 = _mm256_loadu_ps(kp + 8);
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) {
        const __m256 qb = _mm256_broadcast_ss(Q + r * D + d);
        acc[r][0] = _mm256_fmadd_ps(qb, k0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(qb, k1, acc[r][1]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      _mm256_storeu_ps(S + r * lds + j, acc[r][0]);
      _mm256_storeu_ps(S + r * lds + j + 8, acc[r][1]);
    }
  }
}

// acc[r][0 .. 8 NV) += sum_j P[r][j] V[j][0 .. 8 NV) for the 6 rows of a micro-block: 6 x NV accumulators,
// NV value vectors and a broadcast fit the 16 vector registers for NV <= 2, and each value row is loaded
// once for all six rows (pairs of rows re-read the values from L2 three times: measured 1.4x slower).
template <int NV>
PICTOR_AVX2 void accumulate_values(const float* P, int64_t ldp, const float* V, int64_t ldv, int64_t keys, float* acc,
                                   int64_t lda) {
  __m256 c[kRows][NV];
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < NV; ++n) c[r][n] = _mm256_loadu_ps(acc + r * lda + 8 * n);
  for (int64_t j = 0; j < keys; ++j) {
    __m256 vv[NV];
#pragma GCC unroll 2
    for (int n = 0; n < NV; ++n) vv[n] = _mm256_loadu_ps(V + j * ldv + 8 * n);
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      const __m256 pb = _mm256_broadcast_ss(P + r * ldp + j);
#pragma GCC unroll 2
      for (int n = 0; n < NV; ++n) c[r][n] = _mm256_fmadd_ps(pb, vv[n], c[r][n]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < NV; ++n) _mm256_storeu_ps(acc + r * lda + 8 * n, c[r][n]);
}

PICTOR_AVX2 void accumulate_all(const float* P, int64_t ldp, const float* V, int64_t ldv, int64_t keys, float* acc,
                                int64_t lda, int64_t Dv) {
  int64_t d = 0;
  for (; d + 16 <= Dv; d += 16) accumulate_values<2>(P, ldp, V + d, ldv, keys, acc + d, lda);
  if (d < Dv) accumulate_values<1>(P, ldp, V + d, ldv, keys, acc + d, lda);
}

// Online softmax step for one row of a chunk: scores -> exp(score - new maximum) in place, the running
// maximum m and sum l updated, the partial output row rescaled when the maximum grew.
PICTOR_AVX2 void softmax_step(float* s, int64_t keys, float& m, float& l, float* acc, int64_t Dv) {
  __m256 mv = _mm256_set1_ps(kNegInf);
  for (int64_t j = 0; j < keys; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
  const float m_new = std::max(m, hmax(mv));
  if (m_new == kNegInf) {  // every key so far masked out: no weight yet
    std::fill(s, s + keys, 0.0f);
    return;
  }
  const __m256 mx = _mm256_set1_ps(m_new);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < keys; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), mx));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (m_new > m) {
    const float alpha = m == kNegInf ? 0.0f : std::exp(m - m_new);
    l *= alpha;
    const __m256 av = _mm256_set1_ps(alpha);
    for (int64_t d = 0; d < Dv; d += 8) _mm256_storeu_ps(acc + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), av));
    m = m_new;
  }
  l += hsum(sum);
}

struct Shapes {
  int64_t B, H, Tq, Tk, D, Dv, Tk_pad;
};

// One task: rows [i0, i0 + n) of head (b, h), whose keys Kp (16-key tiles) and values Vp ([Tk][Dv]) are
// packed.
PICTOR_AVX2 void run_task(const Shapes& sh, const float* q, const int64_t* qs, const float* Kp, const float* Vp,
                          const float* mask, const int64_t* ms, float scale, float* out, const int64_t* os, int64_t b,
                          int64_t h, int64_t i0, int64_t n) {
  const int64_t D = sh.D, Dv = sh.Dv, rows = (n + kRows - 1) / kRows * kRows;
  std::vector<float> Q(rows * D, 0.0f), acc(rows * Dv, 0.0f), S(kRows * kKeyChunk);
  std::vector<float> m(rows, kNegInf), l(rows, 0.0f);
  const float* qh = q + b * qs[0] + h * qs[1];
  for (int64_t i = 0; i < n; ++i)  // the scale folded into the task's query rows
    for (int64_t d = 0; d < D; ++d) Q[i * D + d] = qh[(i0 + i) * qs[2] + d] * scale;
  const float* mh = mask ? mask + b * ms[0] + h * ms[1] : nullptr;

  for (int64_t k0 = 0; k0 < sh.Tk; k0 += kKeyChunk) {
    const int64_t valid = std::min(kKeyChunk, sh.Tk - k0), keys = (valid + kKeyTile - 1) / kKeyTile * kKeyTile;
    for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
      score_tiles(Q.data() + r0 * D, D, Kp + k0 * D, keys, S.data(), kKeyChunk);
      for (int64_t r = 0; r < kRows; ++r) {
        float* s = S.data() + r * kKeyChunk;
        if (mh && r0 + r < n) {
          const float* mr = mh + (i0 + r0 + r) * ms[2] + k0;
          for (int64_t j = 0; j < valid; ++j) s[j] += mr[j];
        }
        std::fill(s + valid, s + keys, kNegInf);  // padding keys
        softmax_step(s, keys, m[r0 + r], l[r0 + r], acc.data() + (r0 + r) * Dv, Dv);
      }
      // Padding keys have weight 0; their value rows are read only up to `valid`.
      accumulate_all(S.data(), kKeyChunk, Vp + k0 * Dv, Dv, valid, acc.data() + r0 * Dv, Dv, Dv);
    }
  }
  float* oh = out + b * os[0] + h * os[1];
  for (int64_t i = 0; i < n; ++i) {
    const float inv = 1.0f / l[i];
    for (int64_t d = 0; d < Dv; ++d) oh[(i0 + i) * os[2] + d] = acc[i * Dv + d] * inv;
  }
}

bool unit_last_stride(const at::Tensor& t) {
  return t.stride(3) == 1 || t.size(3) == 1;
}

}  // namespace

bool available() {
  return avx2::cpu_has_avx2();
}

bool run(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double scale,
         const at::Tensor& out) {
  if (!available()) return false;
  for (const at::Tensor* t : {&q, &k, &v, &out})
    if (!t->is_cpu() || t->scalar_type() != at::kFloat || t->dim() != 4 || !unit_last_stride(*t)) return false;
  const Shapes sh{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), (k.size(2) + 15) / 16 * 16};
  if (sh.D % 8 || sh.Dv % 8 || sh.D > kMaxHeadDim || sh.Dv > kMaxHeadDim || sh.Tk == 0) return false;
  at::Tensor m4;
  if (mask.defined()) {
    if (!mask.is_cpu() || mask.scalar_type() != at::kFloat) return false;
    m4 = mask.expand({sh.B, sh.H, sh.Tq, sh.Tk});
    if (m4.stride(3) != 1 && sh.Tk > 1) return false;
  }
  // Keys and values packed once per head: keys in tiles of 16 ([D][16] each, zero padding), so the score
  // kernel reads a tile in order; values as contiguous [Tk][Dv] rows.
  const int64_t BH = sh.B * sh.H;
  at::Tensor kp = at::zeros({BH, sh.Tk_pad * sh.D}, q.options()), vp = at::empty({BH, sh.Tk * sh.Dv}, q.options());
  at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / sh.H, h = bh % sh.H;
      const float* ks = k.data_ptr<float>() + b * k.stride(0) + h * k.stride(1);
      const float* vsrc = v.data_ptr<float>() + b * v.stride(0) + h * v.stride(1);
      float* kd = kp.data_ptr<float>() + bh * sh.Tk_pad * sh.D;
      float* vd = vp.data_ptr<float>() + bh * sh.Tk * sh.Dv;
      for (int64_t j = 0; j < sh.Tk; ++j) {
        float* tile = kd + (j / kKeyTile) * sh.D * kKeyTile + j % kKeyTile;
        for (int64_t d = 0; d < sh.D; ++d) tile[d * kKeyTile] = ks[j * k.stride(2) + d];
        std::copy(vsrc + j * v.stride(2), vsrc + j * v.stride(2) + sh.Dv, vd + j * sh.Dv);
      }
    }
  });
  const int64_t qs[3] = {q.stride(0), q.stride(1), q.stride(2)};
  const int64_t os[3] = {out.stride(0), out.stride(1), out.stride(2)};
  const int64_t ms[3] = {m4.defined() ? m4.stride(0) : 0, m4.defined() ? m4.stride(1) : 0,
                         m4.defined() ? m4.stride(2) : 0};
  const float* mp = m4.defined() ? m4.data_ptr<float>() : nullptr;
  const int64_t blocks = (sh.Tq + kRowsPerTask - 1) / kRowsPerTask;
  parallel_parts(sh.B * sh.H * blocks, [&](int64_t t) {
    const int64_t bh = t / blocks, i0 = (t % blocks) * kRowsPerTask;
    run_task(sh, q.data_ptr<float>(), qs, kp.data_ptr<float>() + bh * sh.Tk_pad * sh.D,
             vp.data_ptr<float>() + bh * sh.Tk * sh.Dv, mp, ms, static_cast<float>(scale), out.data_ptr<float>(), os,
             bh / sh.H, bh % sh.H, i0, std::min(kRowsPerTask, sh.Tq - i0));
  });
  return true;
}

#else  // not x86: nn::attention takes its BLAS path

bool available() {
  return false;
}

bool run(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double, const at::Tensor&) {
  return false;
}

#endif

}  // namespace pictor::nn::flash_attention
