// The Winograd convolution and the fused attention kernel against the ATen expressions they replace,
// including the shapes that exercise their edges (odd sizes, several bands, padding keys, masks), and
// their thread-count independence (seeds must reproduce images on any --threads).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "nn/attention.hpp"
#include "nn/conv_prepack.hpp"
#include "nn/flash_attention.hpp"
#include "nn/layers.hpp"
#include "nn/winograd_conv.hpp"

namespace pictor::nn {
namespace {

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return (got - want).abs().max().item<double>() / std::max(1e-12, want.abs().max().item<double>());
}

// Restores the thread count a test changes.
struct ThreadCount {
  int saved = at::get_num_threads();
  ~ThreadCount() { at::set_num_threads(saved); }
};

TEST(WinogradConv, MatchesConv2dOnOddSizesBatchesAndBands) {
  c10::InferenceMode guard;
  at::manual_seed(3);
  struct Case {
    int64_t N, C, K, H, W;
    bool bias;
  };
  // 67 x 65 channels: no multiple of the vector width; 17 x 23: odd height and width (a spare output
  // row and column in the last tiles); 256 channels at 66 x 66: three bands of tile rows.
  for (const Case& c : {Case{2, 67, 65, 17, 23, true}, Case{1, 64, 96, 32, 32, false}, Case{1, 256, 256, 66, 66, true},
                        Case{3, 70, 64, 9, 40, true}}) {
    const at::Tensor x = at::randn({c.N, c.C, c.H, c.W}), w = at::randn({c.K, c.C, 3, 3}) / std::sqrt(9.0 * c.C);
    const at::Tensor b = c.bias ? at::randn({c.K}) : at::Tensor();
    const at::Tensor want = at::conv2d(x, w, b, 1, 1);
    const at::Tensor got = winograd::conv3x3(x, w, b);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(got.is_contiguous());
    // Measured ~4e-6 of the largest output for these sizes (the direct convolution itself rounds ~1e-6).
    EXPECT_LT(relative_error(got, want), 2e-5) << c.C << "->" << c.K << " at " << c.H << "x" << c.W;
  }
}

TEST(WinogradConv, NonContiguousInputAndSameBitsOnOneAndTwoThreads) {
  c10::InferenceMode guard;
  ThreadCount restore;
  const at::Tensor x = at::randn({1, 24, 24, 80}).permute({0, 3, 1, 2});  // channels-last view
  const at::Tensor w = at::randn({72, 80, 3, 3}) / 27.0, b = at::randn({72});
  at::set_num_threads(1);
  const at::Tensor one = winograd::conv3x3(x, w, b);
  at::set_num_threads(2);
  const at::Tensor two = winograd::conv3x3(x, w, b);
  EXPECT_TRUE(at::equal(one, two));
  EXPECT_LT(relative_error(two, at::conv2d(x, w, b, 1, 1)), 2e-5);
}

TEST(WinogradConv, UsedOnlyWhereItPaysOff) {
  c10::InferenceMode guard;
  const at::Tensor big = at::empty({2, 320, 64, 64});
  EXPECT_TRUE(winograd::worthwhile(big, {320, 320, 3, 3}, 1, 1));
  EXPECT_FALSE(winograd::worthwhile(big, {320, 320, 3, 3}, 2, 1));  // strided (downsampler)
  EXPECT_FALSE(winograd::worthwhile(big, {320, 320, 1, 1}, 1, 0));  // 1x1 shortcut
  EXPECT_FALSE(winograd::worthwhile(big, {4, 320, 3, 3}, 1, 1));    // conv_out: too few outputs
  EXPECT_FALSE(winograd::worthwhile(big, {320, 640, 3, 3}, 1, 1));  // channel mismatch: conv2d reports it
  EXPECT_FALSE(winograd::worthwhile(at::empty({1, 1280, 8, 8}), {1280, 1280, 3, 3}, 1, 1));  // too few tiles
  EXPECT_FALSE(winograd::worthwhile(big.to(at::kDouble), {320, 320, 3, 3}, 1, 1));
  winograd::set_enabled(false);
  EXPECT_FALSE(winograd::worthwhile(big, {320, 320, 3, 3}, 1, 1));
  winograd::set_enabled(true);
}

TEST(WinogradConv, OutsideInferenceModeAutogradKeepsTheDirectPath) {
  const at::Tensor x = at::randn({1, 64, 32, 32});
  EXPECT_FALSE(winograd::worthwhile(x, {64, 64, 3, 3}, 1, 1));
  at::NoGradGuard no_grad;
  EXPECT_TRUE(winograd::worthwhile(x, {64, 64, 3, 3}, 1, 1));
}

TEST(WinogradConv, MismatchedTransformedWeightsAreRefused) {
  c10::InferenceMode guard;
  const at::Tensor U = winograd::transform_weights(at::randn({64, 32, 3, 3}));
  EXPECT_EQ(U.sizes(), (std::vector<int64_t>{32, 16, 64}));
  EXPECT_THROW(winograd::conv3x3_transformed(at::randn({1, 48, 8, 8}), U, {}), c10::Error);
  EXPECT_THROW(winograd::conv3x3_transformed(at::randn({1, 32, 8, 8}), U, at::randn({63})), c10::Error);
  EXPECT_THROW(winograd::transform_weights(at::randn({64, 32, 5, 5})), c10::Error);
}

TEST(WinogradConv, PrepackedConvTakesItForLargeInputsAndMatchesThePlainConv) {
  c10::InferenceMode guard;
  Conv2d conv;
  conv.weight = at::randn({64, 64, 3, 3}) / 24.0, conv.bias = at::randn({64}), conv.padding = 1;
  PrepackedConv2d layer(conv);
  for (int64_t size : {64, 8}) {  // Winograd at 64x64, oneDNN at 8x8
    const at::Tensor x = at::randn({1, 64, size, size});
    EXPECT_LT(relative_error(layer(x), conv(x)), 2e-5) << size;
  }
  winograd::set_enabled(false);
  const at::Tensor x = at::randn({1, 64, 64, 64});
  EXPECT_LT(relative_error(layer(x), conv(x)), 2e-5);
  winograd::set_enabled(true);
  EXPECT_LT(relative_error(layer(x), conv(x)), 2e-5);  // the released weight comes back for Winograd
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                               double scale) {
  at::Tensor s = at::matmul(q, k.transpose(-1, -2)) * scale;
  if (mask.defined()) s = s + mask;
  return at::matmul(at::softmax(s, -1), v);
}

// [B, H, T, D] views of [B, T, H, D] buffers, the layout attention gets from the projections.
at::Tensor heads(int64_t B, int64_t H, int64_t T, int64_t D) {
  return at::randn({B, T, H, D}).permute({0, 2, 1, 3});
}

TEST(FlashAttention, MatchesSoftmaxAttentionAcrossHeadSizesAndRaggedLengths) {
  if (!flash_attention::available()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  c10::InferenceMode guard;
  at::manual_seed(5);
  struct Case {
    int64_t B, H, Tq, Tk, D;
  };
  // Lengths off every block size (6-row micro-blocks, 96-row tasks, 16-key tiles, 256-key chunks), cross
  // attention to 77 tokens, and the head sizes of SD 1.x (40, 80, 160), SD 2.x / CLIP (64), SigLIP (72).
  for (const Case& c : {Case{2, 3, 197, 300, 40}, Case{1, 2, 100, 77, 80}, Case{1, 1, 37, 513, 160},
                        Case{2, 2, 250, 250, 64}, Case{1, 2, 50, 17, 72}, Case{1, 1, 20, 1, 8}}) {
    const at::Tensor q = heads(c.B, c.H, c.Tq, c.D), k = heads(c.B, c.H, c.Tk, c.D), v = heads(c.B, c.H, c.Tk, c.D);
    const double scale = 1.0 / std::sqrt(double(c.D));
    at::Tensor out = at::empty({c.B, c.Tq, c.H, c.D}).permute({0, 2, 1, 3});
    ASSERT_TRUE(flash_attention::run(q, k, v, {}, scale, out));
    EXPECT_LT(relative_error(out, reference_attention(q, k, v, {}, scale)), 1e-5) << c.Tq << "x" << c.Tk << " D" << c.D;
  }
}

TEST(FlashAttention, AdditiveMasksIncludingFullyMaskedRows) {
  if (!flash_attention::available()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  c10::InferenceMode guard;
  const int64_t T = 130, D = 32;
  const at::Tensor q = heads(2, 2, T, D), k = heads(2, 2, T, D), v = heads(2, 2, T, D);
  // Causal mask [1, 1, T, T] and a key-padding mask [B, 1, 1, T] (the second sequence ends at 90).
  const at::Tensor causal = at::full({T, T}, -std::numeric_limits<float>::infinity()).triu(1).view({1, 1, T, T});
  at::Tensor padding = at::zeros({2, 1, 1, T});
  padding[1].narrow(-1, 90, T - 90).fill_(std::numeric_limits<float>::lowest());
  for (const at::Tensor& mask : {causal, padding}) {
    at::Tensor out = at::empty({2, 2, T, D});
    ASSERT_TRUE(flash_attention::run(q, k, v, mask, 0.2, out));
    EXPECT_LT(relative_error(out, reference_attention(q, k, v, mask, 0.2)), 1e-5);
  }
  // A row with every key at -inf has no softmax: NaN, as at::softmax gives.
  at::Tensor all_masked = at::zeros({1, 1, T, T});
  all_masked[0][0][3].fill_(-std::numeric_limits<float>::infinity());
  at::Tensor out = at::empty({2, 2, T, D});
  ASSERT_TRUE(flash_attention::run(q, k, v, all_masked, 0.2, out));
  EXPECT_TRUE(std::isnan(out[0][0][3][0].item<float>()));
  EXPECT_FALSE(at::isnan(out[0][0][4]).any().item<bool>());
}

TEST(FlashAttention, DeclinesWhatItCannotRunAndAttentionFallsBack) {
  c10::InferenceMode guard;
  const at::Tensor q = heads(1, 2, 40, 12), k = heads(1, 2, 40, 12), v = heads(1, 2, 40, 12);
  at::Tensor out = at::empty({1, 2, 40, 12});
  EXPECT_FALSE(flash_attention::run(q, k, v, {}, 0.3, out));  // head size 12: not a multiple of 8
  EXPECT_LT(relative_error(attention(q, k, v, {}, 0.3), reference_attention(q, k, v, {}, 0.3)), 1e-5);
  // With the fused kernel switched off nn::attention runs its blocked BLAS path, which must agree too.
  const at::Tensor q2 = heads(1, 2, 200, 40), k2 = heads(1, 2, 200, 40), v2 = heads(1, 2, 200, 40);
  set_fused_attention(false);
  const at::Tensor blas = attention(q2, k2, v2);
  set_fused_attention(true);
  EXPECT_LT(relative_error(attention(q2, k2, v2), blas), 1e-5);
}

TEST(FlashAttention, SameBitsOnOneAndTwoThreads) {
  c10::InferenceMode guard;
  ThreadCount restore;
  const at::Tensor q = heads(2, 4, 300, 40), k = heads(2, 4, 300, 40), v = heads(2, 4, 300, 40);
  at::set_num_threads(1);
  const at::Tensor one = attention(q, k, v);
  at::set_num_threads(2);
  EXPECT_TRUE(at::equal(one, attention(q, k, v)));
}

}  // namespace
}  // namespace pictor::nn
