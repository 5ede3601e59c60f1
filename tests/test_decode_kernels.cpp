// The hand-written decode kernels against the ATen expressions they replace (the reference).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "models/rope.hpp"
#include "nn/attention.hpp"
#include "nn/decode_kernels.hpp"
#include "nn/layers.hpp"

namespace pictor::nn {
namespace {

namespace dk = decode_kernels;

void expect_close(const at::Tensor& got, const at::Tensor& want, double tol = 2e-5) {
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.sizes(), want.sizes());
  const double err = (got - want).abs().max().item<double>();
  EXPECT_LE(err, tol * std::max(1.0, want.abs().max().item<double>()));
}

TEST(DecodeKernels, MatvecMatchesLinearIncludingOddSizes) {
  c10::InferenceMode guard;
  at::manual_seed(1);
  for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{576, 576}, {7, 13}, {1, 1}, {100, 41}, {3, 1024}}) {
    const at::Tensor W = at::randn({N, K}), x = at::randn({1, 1, K}), b = at::randn({N});
    expect_close(dk::matvec(W, x, b), at::linear(x, W, b).view({N}));
    expect_close(dk::matvec(W, x, {}), at::linear(x, W).view({N}));
    // nn::linear routes one row through the kernel and keeps the input's leading shape.
    expect_close(nn::linear(x, W, b), at::linear(x, W, b));
  }
}

TEST(DecodeKernels, FallBackWhenNotApplicable) {
  const at::Tensor W = at::randn({8, 4}), x = at::randn({4});
  EXPECT_FALSE(dk::matvec(W.to(at::kDouble), x.to(at::kDouble), {}).defined());  // not float32
  EXPECT_FALSE(dk::matvec(W.t(), at::randn({8}), {}).defined());                 // not contiguous
  EXPECT_FALSE(dk::matvec(W, at::randn({5}), {}).defined());                     // wrong length
  // Autograd recording: the kernels cannot differentiate, so the ATen path must run.
  const at::Tensor Wg = W.clone().requires_grad_(true);
  EXPECT_FALSE(dk::matvec(Wg, x, {}).defined());
  at::Tensor y = nn::linear(x.view({1, 4}), Wg);
  y.sum().backward();
  ASSERT_TRUE(Wg.grad().defined());
  EXPECT_TRUE(at::allclose(Wg.grad(), x.view({1, 4}).expand({8, 4})));
}

TEST(DecodeKernels, RmsNormMatchesTheLlamaFormula) {
  c10::InferenceMode guard;
  const at::Tensor x = at::randn({2, 5, 96}), w = at::randn({96});
  const double eps = 1e-5;
  const at::Tensor want = w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
  expect_close(dk::rms_norm(x, w, eps), want);
  EXPECT_FALSE(dk::rms_norm(x, at::randn({95}), eps).defined());
}

TEST(DecodeKernels, RotaryInPlaceMatchesRotateHalf) {
  c10::InferenceMode guard;
  const models::RotaryEmbedding rope(64, 10000.0, at::kCPU);
  const at::Tensor pos = at::tensor({3, 4, 5, 9, 10, 11}, at::kLong).view({2, 3});
  auto [cos, sin] = rope.tables(pos);
  const at::Tensor x = at::randn({2, 3, 4, 64});  // [B, T, H, D]
  const at::Tensor want = models::RotaryEmbedding::apply(x.transpose(1, 2), cos, sin);
  at::Tensor y = x.clone();
  ASSERT_TRUE(dk::rotate_half_inplace(y, cos, sin));
  expect_close(y.transpose(1, 2), want);
  expect_close(models::RotaryEmbedding::apply_to_projection(x.clone(), cos, sin), want);
  // Tables shared by the batch (one row of positions).
  auto [c1, s1] = rope.tables(pos.narrow(0, 0, 1));
  at::Tensor z = x.clone();
  ASSERT_TRUE(dk::rotate_half_inplace(z, c1, s1));
  expect_close(z.transpose(1, 2), models::RotaryEmbedding::apply(x.transpose(1, 2), c1, s1));
  // A slice of a joined q/k/v projection: rows with a stride, rotated in place without touching the rest.
  const at::Tensor joined = at::randn({2, 3, 3 * 4 * 64});
  at::Tensor work = joined.clone();
  at::Tensor k = work.narrow(2, 4 * 64, 4 * 64).view({2, 3, 4, 64});
  ASSERT_FALSE(k.is_contiguous());
  ASSERT_TRUE(dk::rotate_half_inplace(k, cos, sin));
  expect_close(k.transpose(1, 2), models::RotaryEmbedding::apply(
                                      joined.narrow(2, 256, 256).view({2, 3, 4, 64}).transpose(1, 2), cos, sin));
  EXPECT_TRUE(at::equal(work.narrow(2, 0, 256), joined.narrow(2, 0, 256)));
  EXPECT_TRUE(at::equal(work.narrow(2, 512, 256), joined.narrow(2, 512, 256)));
}

TEST(DecodeKernels, SoftmaxRowsMatchesATen) {
  c10::InferenceMode guard;
  for (int64_t n : {1, 7, 8, 77, 4096}) {
    at::Tensor x = at::randn({5, n}) * 6;
    x[2].fill_(std::numeric_limits<float>::lowest());  // a fully masked row: uniform, as at::softmax gives
    if (n > 3) x[3].narrow(0, 0, n / 2).fill_(std::numeric_limits<float>::lowest());  // half masked
    at::Tensor out = at::empty_like(x);
    ASSERT_TRUE(dk::softmax_rows(x, out));
    expect_close(out, at::softmax(x, -1), 1e-6);
  }
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                               double scale) {
  at::Tensor s = at::matmul(q, k.transpose(-1, -2)) * scale;
  if (mask.defined()) s = s + mask;
  return at::matmul(at::softmax(s, -1), v);
}

TEST(DecodeKernels, SmallQueryAttentionAgainstACacheView) {
  c10::InferenceMode guard;
  // Keys and values as the KV cache hands them out: a narrow view of a larger buffer.
  const at::Tensor kbuf = at::randn({2, 3, 40, 64}), vbuf = at::randn({2, 3, 40, 64});
  const at::Tensor k = kbuf.narrow(2, 0, 29), v = vbuf.narrow(2, 0, 29);
  const at::Tensor q = at::randn({2, 1, 3, 64}).transpose(1, 2);  // [B, H, 1, D], strided
  expect_close(dk::small_query_attention(q, k, v, {}, 0.125), reference_attention(q, k, v, {}, 0.125));
  // Additive padding mask [B, 1, 1, S], broadcast over heads: batch 1 masks its first 5 keys.
  at::Tensor mask = at::zeros({2, 1, 1, 29});
  mask[1].narrow(-1, 0, 5).fill_(std::numeric_limits<float>::lowest());
  expect_close(dk::small_query_attention(q, k, v, mask, 0.125), reference_attention(q, k, v, mask, 0.125));
  // nn::attention takes the kernel for few query rows and must agree with its chunked path.
  expect_close(attention(q, k, v, mask, 0.125), reference_attention(q, k, v, mask, 0.125));
}

// OpenBLAS's own threading rounds differently per thread count (these shapes differ by ~1e-5 through
// at::linear with 1 and 2 threads); nn::linear must give the same bits, or seeds stop reproducing images
// across --threads.
TEST(CpuLinear, SameBitsOnOneAndTwoThreads) {
  c10::InferenceMode guard;
  const int saved = at::get_num_threads();
  for (auto [M, K, N] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{48, 64, 256}, {300, 576, 576}, {7, 33, 600}}) {
    const at::Tensor x = at::randn({1, M, K}), w = at::randn({N, K}), b = at::randn({N});
    at::set_num_threads(1);
    const at::Tensor one = nn::linear(x, w, b);
    at::set_num_threads(2);
    const at::Tensor two = nn::linear(x, w, b);
    EXPECT_TRUE(at::equal(one, two)) << M << "x" << K << "x" << N;
    expect_close(two, at::linear(x, w, b), 1e-5);
    // Attention blocks are single-threaded BLAS calls too.
    const at::Tensor q = at::randn({1, 2, M, 40}), k = at::randn({1, 2, M, 40}), v = at::randn({1, 2, M, 40});
    at::set_num_threads(1);
    const at::Tensor a1 = attention(q, k, v);
    at::set_num_threads(2);
    EXPECT_TRUE(at::equal(a1, attention(q, k, v)));
  }
  at::set_num_threads(saved);
}

}  // namespace
}  // namespace pictor::nn
