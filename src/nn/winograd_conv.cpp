// Winograd F(2x2, 3x3) convolution (see winograd_conv.hpp). Compiled with OpenMP (see CMakeLists.txt) so
// at::parallel_for forks and `omp simd` vectorises the per-channel transform loops.
//
// Layout: the image is processed in bands of tile rows. A band's input rows are copied channels-last
// ([row, column, channel]) so that every transform reads and writes whole channel vectors; each of the
// 16 Winograd positions then holds a [tiles x C] matrix V, multiplied by the transformed weights U
// [C x K] into M [tiles x K], and the inverse transform writes the band's output rows. Bands are sized so
// V and M stay in the last-level cache, and only one band's buffers exist at a time.
#include "nn/winograd_conv.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "nn/one_blas_thread.hpp"

#include "nn/avx2_math.hpp"  // PICTOR_HAVE_X86 for the 8 x 8 transpose

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// The transform loops are compiled twice and the AVX2 copy is picked at load time where the CPU has it.
// They only add, subtract and halve, so both copies give identical bits.
#define PICTOR_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PICTOR_SIMD_CLONES
#endif

namespace pictor::nn::winograd {

namespace {
constexpr int64_t kPositions = 16;               // 4x4 Winograd-domain positions per tile
constexpr int64_t kBandBudgetBytes = 8ll << 20;  // V (or M) of one band: about a quarter of the L3
constexpr int64_t kMinChannels = 64;             // below this the products are too thin for BLAS
constexpr int64_t kMinTiles = 256;               // output tiles (of 2x2) per call; fewer: oneDNN is faster
std::atomic<bool> g_enabled{true};

// U[c][xi][k] = (G g G^T)[xi] for every 3x3 kernel g = w[k][c], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
// The 16 positions of one input channel sit next to each other (U[xi] is a C x K matrix with row stride
// 16 K). The work goes in blocks of channels x output channels so that both the reads (runs of w[k]) and
// the writes (runs of U[c][xi]) stay within a few hundred pages: a sweep over all of U per output channel
// block misses the TLB on nearly every store (measured 5x slower for 1280 x 1280).
void transform_weights_into(const float* w, int64_t K, int64_t C, float* U) {
  constexpr int64_t kChannelBlock = 16, kOutBlock = 64;
  const int64_t c_blocks = (C + kChannelBlock - 1) / kChannelBlock;
  at::parallel_for(0, c_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t c0 = b0 * kChannelBlock; c0 < std::min(C, b1 * kChannelBlock); c0 += kChannelBlock)
      for (int64_t k0 = 0; k0 < K; k0 += kOutBlock)
        for (int64_t c = c0; c < std::min(C, c0 + kChannelBlock); ++c)
          for (int64_t k = k0; k < std::min(K, k0 + kOutBlock); ++k) {
            const float* g = w + (k * C + c) * 9;
            float t[4][3];  // G g
            for (int j = 0; j < 3; ++j) {
              t[0][j] = g[j];
              t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
              t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
              t[3][j] = g[6 + j];
            }
            for (int i = 0; i < 4; ++i) {  // (G g) G^T
              float* u = U + (c * kPositions + i * 4) * K + k;
              u[0] = t[i][0];
              u[K] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
              u[2 * K] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
              u[3 * K] = t[i][2];
            }
          }
  });
}

#ifdef PICTOR_HAVE_X86
// dst[c][r] = src[r][c] for one 8 x 8 block: the classic unpack / shuffle / lane-permute sequence.
PICTOR_AVX2 void transpose8x8(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// dst[c][r] = src[r][c] for an R x Cols matrix in 32 x 32 squares (8 x 8 vector blocks where the CPU has
// AVX2), spread over the threads.
void transpose(const float* src, int64_t R, int64_t Cols, int64_t src_stride, float* dst, int64_t dst_stride) {
  constexpr int64_t kSquare = 32;
#ifdef PICTOR_HAVE_X86
  const bool avx = avx2::cpu_has_avx2();
#else
  constexpr bool avx = false;
#endif
  at::parallel_for(0, (R + kSquare - 1) / kSquare, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t r0 = b0 * kSquare; r0 < std::min(R, b1 * kSquare); r0 += kSquare)
      for (int64_t c0 = 0; c0 < Cols; c0 += kSquare) {
        const int64_t r1 = std::min(R, r0 + kSquare), c1 = std::min(Cols, c0 + kSquare);
        int64_t rv = r0, cv = c0;  // the part covered by whole 8 x 8 blocks
#ifdef PICTOR_HAVE_X86
        if (avx) {
          rv = r0 + (r1 - r0) / 8 * 8, cv = c0 + (c1 - c0) / 8 * 8;
          for (int64_t r = r0; r < rv; r += 8)
            for (int64_t c = c0; c < cv; c += 8)
              transpose8x8(src + r * src_stride + c, src_stride, dst + c * dst_stride + r, dst_stride);
        }
#endif
        for (int64_t c = c0; c < c1; ++c)  // the rest, element by element
          for (int64_t r = (c < cv ? rv : r0); r < r1; ++r) dst[c * dst_stride + r] = src[r * src_stride + c];
      }
  });
}

// One tile's V[xi] rows, v[xi][c] = (B^T d B)[xi] over channel vectors, d[r][s] = the input pixel at tile row r,
// column s (pointers to C channels; out-of-image pixels point at zeros).
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
PICTOR_SIMD_CLONES void transform_tile(const float* const d[4][4], int64_t C, float* v) {
  const int64_t position_stride = C;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    float t[4][4];  // B^T d
    for (int s = 0; s < 4; ++s) {
      const float d0 = d[0][s][c], d1 = d[1][s][c], d2 = d[2][s][c], d3 = d[3][s][c];
      t[0][s] = d0 - d2;
      t[1][s] = d1 + d2;
      t[2][s] = d2 - d1;
      t[3][s] = d1 - d3;
    }
    for (int r = 0; r < 4; ++r) {  // (B^T d) B
      float* out = v + r * 4 * position_stride + c;
      out[0] = t[r][0] - t[r][2];
      out[position_stride] = t[r][1] + t[r][2];
      out[2 * position_stride] = t[r][2] - t[r][1];
      out[3 * position_stride] = t[r][1] - t[r][3];
    }
  }
}

// The 2x2 outputs of one tile from its products m[xi][k]: A^T m A (+ bias) over channel vectors,
// A^T = [1 1 1 0; 0 1 -1 -1].
PICTOR_SIMD_CLONES void untransform_tile(const float* m, const float* bias, int64_t K, float* const y[2][2]) {
  const int64_t position_stride = K;
#pragma omp simd
  for (int64_t k = 0; k < K; ++k) {
    float u[2][4];  // A^T m
    for (int s = 0; s < 4; ++s) {
      const float m0 = m[s * position_stride + k], m1 = m[(4 + s) * position_stride + k],
                  m2 = m[(8 + s) * position_stride + k], m3 = m[(12 + s) * position_stride + k];
      u[0][s] = m0 + m1 + m2;
      u[1][s] = m1 - m2 - m3;
    }
    const float b = bias ? bias[k] : 0.0f;
    for (int r = 0; r < 2; ++r) {  // (A^T m) A
      y[r][0][k] = u[r][0] + u[r][1] + u[r][2] + b;
      y[r][1][k] = u[r][1] - u[r][2] - u[r][3] + b;
    }
  }
}
}  // namespace

void set_enabled(bool on) {
  g_enabled = on;
}
bool enabled() {
  return g_enabled;
}

bool worthwhile(const at::Tensor& x, at::IntArrayRef weight_sizes, int64_t stride, int64_t padding) {
  if (!g_enabled || stride != 1 || padding != 1 || x.dim() != 4 || weight_sizes.size() != 4) return false;
  if (weight_sizes[1] != x.size(1) || weight_sizes[2] != 3 || weight_sizes[3] != 3) return false;
  if (!x.is_cpu() || x.scalar_type() != at::kFloat) return false;
  if (at::GradMode::is_enabled() && !c10::InferenceMode::is_enabled()) return false;
  const int64_t tiles = x.size(0) * ((x.size(2) + 1) / 2) * ((x.size(3) + 1) / 2);
  return x.size(1) >= kMinChannels && weight_sizes[0] >= kMinChannels && tiles >= kMinTiles;
}

at::Tensor transform_weights(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && weight.is_cpu() &&
                  weight.scalar_type() == at::kFloat,
              "winograd: weight must be fp32 [K, C, 3, 3]");
  const at::Tensor w = weight.contiguous();
  const int64_t K = w.size(0), C = w.size(1);
  at::Tensor U = at::empty({C, kPositions, K}, w.options());
  transform_weights_into(w.data_ptr<float>(), K, C, U.data_ptr<float>());
  return U;
}

at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return conv3x3_transformed(x, transform_weights(weight), bias);
}

at::Tensor conv3x3_transformed(const at::Tensor& x_in, const at::Tensor& U, const at::Tensor& bias_in) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.is_cpu() && x_in.scalar_type() == at::kFloat,
              "winograd: x must be fp32 [N, C, H, W]");
  TORCH_CHECK(U.dim() == 3 && U.size(0) == x_in.size(1) && U.size(1) == kPositions && U.is_contiguous() &&
                  U.scalar_type() == at::kFloat,
              "winograd: transformed weights [C, 16, K] do not match the input's channels");
  TORCH_CHECK(!bias_in.defined() || (bias_in.numel() == U.size(2) && bias_in.scalar_type() == at::kFloat),
              "winograd: bias size differs from the output channels");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = U.size(2);
  const int64_t tile_rows = (H + 1) / 2, tile_cols = (W + 1) / 2;
  const auto opts = x.options();

  // Tile rows per band: V and M of a band within the budget, at least one row.
  const int64_t band_tiles = std::max<int64_t>(64, kBandBudgetBytes / (kPositions * std::max(C, K) * 4));
  const int64_t band_rows = std::clamp<int64_t>(band_tiles / tile_cols, 1, tile_rows);
  const int64_t max_tiles = band_rows * tile_cols;
  // Per tile its 16 positions' rows side by side: V[t][xi][c] and M[t][xi][k].
  at::Tensor V = at::empty({max_tiles, kPositions, C}, opts), M = at::empty({max_tiles, kPositions, K}, opts);
  at::Tensor in_band = at::empty({(2 * band_rows + 2) * W * C}, opts);
  at::Tensor out_band = at::empty({2 * band_rows * W * K}, opts);
  at::Tensor out = at::empty({N, K, H, W}, opts);
  const std::vector<float> zeros(C, 0.0f);
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const bool inference = c10::InferenceMode::is_enabled();

  for (int64_t n = 0; n < N; ++n)
    for (int64_t i0 = 0; i0 < tile_rows; i0 += band_rows) {
      const int64_t rows = std::min(band_rows, tile_rows - i0), tiles = rows * tile_cols;
      // Input rows 2*i0-1 .. 2*(i0+rows), channels last; rows outside the image are never read.
      const int64_t first = 2 * i0 - 1, h0 = std::max<int64_t>(first, 0), h1 = std::min(H, 2 * (i0 + rows) + 1);
      float* in = in_band.data_ptr<float>();  // [h, W, C]
      transpose(x.data_ptr<float>() + (n * C * H + h0) * W, C, (h1 - h0) * W, H * W, in, C);
      float* v = V.data_ptr<float>();
      at::parallel_for(0, tiles, 16, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t i = i0 + t / tile_cols, j = t % tile_cols;
          const float* d[4][4];
          for (int r = 0; r < 4; ++r)
            for (int s = 0; s < 4; ++s) {
              const int64_t h = 2 * i - 1 + r, col = 2 * j - 1 + s;
              d[r][s] = (h >= 0 && h < H && col >= 0 && col < W) ? in + ((h - h0) * W + col) * C : zeros.data();
            }
          transform_tile(d, C, v + t * kPositions * C);
        }
      });
      // The 16 products, one single-threaded BLAS call each: the same arithmetic on any thread count.
      at::parallel_for(0, kPositions, 1, [&](int64_t p0, int64_t p1) {
        c10::InferenceMode guard(inference);  // thread-local: the worker threads need it too
        OneBlasThread one;
        for (int64_t p = p0; p < p1; ++p) {
          at::Tensor m = M.select(1, p).narrow(0, 0, tiles);  // row stride 16 K: BLAS writes it in place
          at::mm_out(m, V.select(1, p).narrow(0, 0, tiles), U.select(1, p));
        }
      });
      // Output rows 2*i0 .. 2*(i0+rows), channels last, then into the NCHW result.
      const int64_t out_rows = std::min(H - 2 * i0, 2 * rows);
      float* ob = out_band.data_ptr<float>();  // [2 * rows, W, K]
      const float* mp = M.data_ptr<float>();
      at::parallel_for(0, tiles, 16, [&](int64_t t0, int64_t t1) {
        std::vector<float> overhang(K);  // the second column of the last tile of an odd width
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r = 2 * (t / tile_cols), col = 2 * (t % tile_cols);
          float* right = col + 1 < W ? ob + (r * W + col + 1) * K : nullptr;
          float* y[2][2] = {{ob + (r * W + col) * K, right ? right : overhang.data()},
                            {ob + ((r + 1) * W + col) * K, right ? right + W * K : overhang.data()}};
          untransform_tile(mp + t * kPositions * K, b, K, y);
        }
      });
      transpose(ob, out_rows * W, K, K, out.data_ptr<float>() + (n * K * H + 2 * i0) * W, H * W);
    }
  return out;
}

}  // namespace pictor::nn::winograd
