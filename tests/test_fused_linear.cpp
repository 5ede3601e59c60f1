// Linear layers joined into one product, activations fused into the product's blocks, and the AVX2
// activation kernel -- each against the plain ATen computation it replaces.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "models/clip_encoder.hpp"
#include "models/unet_transformer.hpp"
#include "nn/activation_kernels.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"
#include "support.hpp"

namespace pictor::nn {
namespace {

// Error relative to max(|want|, 1): relative for large values, absolute near zero. (ATen's tanh GELU,
// 0.5 x (1 + tanh(u)), cancels for negative x, so tiny outputs are compared in absolute terms.)
double max_err(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor w = want.to(at::kDouble);
  return ((got.to(at::kDouble) - w).abs() / w.abs().clamp_min(1.0)).max().item<double>();
}

at::Tensor aten_activation(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return at::silu(x);
    case Activation::QuickGELU: return x * at::sigmoid(x * 1.702);
    case Activation::GELUTanh: return at::gelu(x, "tanh");
    default: return at::gelu(x);
  }
}

const Activation kGated[] = {Activation::SiLU, Activation::QuickGELU, Activation::GELUTanh};

TEST(ActivationKernels, MatchAtenOverTheWholeRangeIncludingTails) {
  c10::InferenceMode guard;
  at::Tensor probe = at::zeros({8});
  if (!activation_kernels::apply_(probe, Activation::SiLU)) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  // Large magnitudes (saturated gates), tiny ones, exact zeros and an odd length (scalar tail).
  at::Tensor x =
      at::cat({at::randn({1001}) * 4, at::linspace(-120, 120, 241), at::zeros({3}), at::linspace(-1e-4, 1e-4, 11)});
  for (Activation a : kGated) {
    at::Tensor got = x.clone();
    ASSERT_TRUE(activation_kernels::apply_(got, a));
    EXPECT_LT(max_err(got, aten_activation(x.to(at::kDouble), a)), 1e-6) << int(a);  // the exact value
    EXPECT_LT(max_err(got, aten_activation(x, a)), 2e-6) << int(a);                  // ATen in fp32
    EXPECT_TRUE(at::isfinite(got).all().item<bool>());
  }
}

TEST(ActivationKernels, ColumnBlockOfALargerMatrixLeavesTheRestAlone) {
  c10::InferenceMode guard;
  const at::Tensor m = at::randn({37, 50}) * 3;
  at::Tensor work = m.clone();
  at::Tensor block = work.narrow(1, 16, 21);  // rows with a stride of 50, 21 columns: a vector part and a tail
  if (!activation_kernels::apply_(block, Activation::GELUTanh)) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  EXPECT_LT(max_err(block, at::gelu(m.narrow(1, 16, 21), "tanh")), 2e-6);
  EXPECT_TRUE(at::equal(work.narrow(1, 0, 16), m.narrow(1, 0, 16)));
  EXPECT_TRUE(at::equal(work.narrow(1, 37, 13), m.narrow(1, 37, 13)));
}

TEST(ActivationKernels, SliceOfTheLastDimensionOfA3dTensor) {
  c10::InferenceMode guard;
  const at::Tensor joined = at::randn({2, 5, 48}) * 3;
  at::Tensor work = joined.clone();
  at::Tensor first = work.narrow(2, 0, 24);  // [2, 5, 24] with a row stride of 48
  if (!activation_kernels::apply_(first, Activation::SiLU)) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  EXPECT_LT(max_err(first, at::silu(joined.narrow(2, 0, 24))), 2e-6);
  EXPECT_TRUE(at::equal(work.narrow(2, 24, 24), joined.narrow(2, 24, 24)));
}

TEST(ActivationKernels, GatedUnitOfJoinedGateAndUp) {
  c10::InferenceMode guard;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 1, 2 * 1536}, {2, 7, 2 * 13}}) {
    const at::Tensor gate_up = at::randn(shape) * 3;
    const auto halves = gate_up.chunk(2, -1);
    for (Activation a : kGated) {
      const at::Tensor want = aten_activation(halves[0], a) * halves[1];
      const at::Tensor got = activation_kernels::gated(gate_up, a);
      if (!got.defined()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(got.is_contiguous());
      EXPECT_LT(max_err(got, want), 1e-5) << int(a);
      EXPECT_LT(max_err(gated(gate_up, a), want), 1e-5);  // nn::gated, the callers' entry
    }
  }
  // The erf GELU has no kernel: nn::gated computes it with ATen.
  const at::Tensor gu = at::randn({3, 8});
  EXPECT_FALSE(activation_kernels::gated(gu, Activation::GELU).defined());
  EXPECT_TRUE(at::allclose(gated(gu, Activation::GELU), at::gelu(gu.narrow(1, 0, 4)) * gu.narrow(1, 4, 4)));
  EXPECT_THROW(gated(at::randn({3, 7}), Activation::SiLU), Error);
}

TEST(ActivationKernels, RefusesWhatItDoesNotCover) {
  c10::InferenceMode guard;
  at::Tensor x = at::randn({4, 8});
  const at::Tensor before = x.clone();
  EXPECT_FALSE(activation_kernels::apply_(x, Activation::GELU));  // erf GELU: ATen's
  EXPECT_FALSE(activation_kernels::apply_(x, Activation::ReLU));
  at::Tensor d = at::randn({4, 8}, at::kDouble);
  EXPECT_FALSE(activation_kernels::apply_(d, Activation::SiLU));
  at::Tensor t = at::randn({4, 6, 8}).transpose(0, 1);  // 3-D and not contiguous
  EXPECT_FALSE(activation_kernels::apply_(t, Activation::SiLU));
  EXPECT_TRUE(at::equal(x, before));
}

TEST(FusedLinear, ActivationInsideTheProductMatchesActivationAfterIt) {
  c10::InferenceMode guard;
  at::manual_seed(3);
  // One row (matvec), many rows (row blocks), few rows and many columns (column blocks), no bias.
  struct Shape {
    int64_t rows, in, out;
    bool bias;
  };
  for (const Shape s :
       {Shape{1, 40, 24, true}, Shape{1024, 48, 40, true}, Shape{9, 32, 200, true}, Shape{600, 16, 600, false}}) {
    const at::Tensor x = at::randn({1, s.rows, s.in}), w = at::randn({s.out, s.in}) * 0.3;
    const at::Tensor b = s.bias ? at::randn({s.out}) : at::Tensor();
    for (Activation a : {Activation::SiLU, Activation::QuickGELU, Activation::GELUTanh, Activation::GELU}) {
      const at::Tensor fused = linear(x, w, b, a);
      const at::Tensor want = aten_activation(at::linear(x, w, b), a);
      ASSERT_EQ(fused.sizes(), want.sizes());
      EXPECT_LT((fused - want).abs().max().item<double>(), 1e-4) << s.rows << "x" << s.out << " act " << int(a);
    }
  }
}

TEST(FusedLinear, WithAutogradItIsTheDifferentiableComposition) {
  const at::Tensor w = at::randn({6, 5}).requires_grad_(true), x = at::randn({3, 5});
  const at::Tensor y = linear(x, w, {}, Activation::GELUTanh);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(at::allclose(y, at::gelu(at::linear(x, w), "tanh"), 1e-5, 1e-6));
}

TEST(JoinOutputs, OneProductEqualsThePartsSideBySideAndThePartsViewIt) {
  c10::InferenceMode guard;
  RandomParams params(7);
  Linear q(params, "q", 32, 32), k(params, "k", 32, 16), v(params, "v", 32, 24);
  const at::Tensor x = at::randn({2, 5, 32});
  const at::Tensor want = at::cat({q(x), k(x), v(x)}, -1);
  const Linear joined = join_outputs({&q, &k, &v});
  ASSERT_EQ(joined.weight.sizes(), (std::vector<int64_t>{72, 32}));
  EXPECT_TRUE(at::allclose(joined(x), want, 1e-5, 1e-6));
  // The parts now read slices of the joined tensors (no second copy) and still compute the same.
  EXPECT_EQ(k.weight.data_ptr<float>(), joined.weight.data_ptr<float>() + 32 * 32);
  EXPECT_EQ(v.bias.data_ptr<float>(), joined.bias.data_ptr<float>() + 48);
  EXPECT_TRUE(at::allclose(k(x), want.narrow(-1, 32, 16), 1e-5, 1e-6));
}

TEST(JoinOutputs, MismatchedLayersAreRefused) {
  RandomParams params(8);
  Linear a(params, "a", 32, 8), b(params, "b", 16, 8), c(params, "c", 32, 8, /*has_bias=*/false);
  EXPECT_THROW(join_outputs({&a, &b}), Error);
  EXPECT_THROW(join_outputs({&a, &c}), Error);
  EXPECT_THROW(join_outputs({}), Error);
  Linear d(params, "d", 32, 8);
  d.quantize_int8();
  EXPECT_THROW(join_outputs({&a, &d}), Error);
}

TEST(JoinOutputs, ClipAttentionMatchesSeparateProjections) {
  c10::InferenceMode guard;
  RandomParams params(9);
  const models::ClipAttention attn(params, "self_attn", 64, 4);
  const at::Tensor x = at::randn({2, 10, 64});
  auto heads = [](const at::Tensor& t) { return t.view({2, 10, 4, 16}).transpose(1, 2); };
  const at::Tensor q = heads(at::linear(x, attn.q_proj.weight, attn.q_proj.bias));
  const at::Tensor k = heads(at::linear(x, attn.k_proj.weight, attn.k_proj.bias));
  const at::Tensor v = heads(at::linear(x, attn.v_proj.weight, attn.v_proj.bias));
  const at::Tensor o = at::softmax(at::matmul(q, k.transpose(-1, -2)) / 4.0, -1).matmul(v);
  const at::Tensor want = attn.out_proj(o.transpose(1, 2).reshape({2, 10, 64}));
  EXPECT_TRUE(at::allclose(attn(x, {}), want, 1e-4, 1e-5));
}

TEST(JoinOutputs, UnetAttentionJoinsQkvForSelfAndKvForCrossAttention) {
  c10::InferenceMode guard;
  RandomParams params(10);
  const models::unet::Attention self(params, "attn1", 32, 32, 2, 16, true);
  const models::unet::Attention cross(params, "attn2", 32, 24, 2, 16, false);
  EXPECT_EQ(self.joined.weight.size(0), 96);
  EXPECT_EQ(cross.joined.weight.size(0), 64);
  const at::Tensor x = at::randn({2, 9, 32}), ctx = at::randn({2, 5, 24}), ctx32 = at::randn({2, 5, 32});
  auto reference = [](const models::unet::Attention& a, const at::Tensor& x, const at::Tensor& c) {
    auto heads = [](const at::Tensor& t) { return t.view({2, t.size(1), 2, 16}).transpose(1, 2); };
    const at::Tensor q = heads(at::linear(x, a.to_q.weight)), k = heads(at::linear(c, a.to_k.weight)),
                     v = heads(at::linear(c, a.to_v.weight));
    const at::Tensor o = at::softmax(at::matmul(q, k.transpose(-1, -2)) / 4.0, -1).matmul(v);
    return at::linear(o.transpose(1, 2).reshape({2, x.size(1), 32}), a.to_out.weight, a.to_out.bias);
  };
  EXPECT_TRUE(at::allclose(self(x, {}), reference(self, x, x), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(cross(x, ctx), reference(cross, x, ctx), 1e-4, 1e-5));
  // Called the other way than built for, the separate projections (views of the joined weight) run.
  EXPECT_TRUE(at::allclose(self(x, ctx32), reference(self, x, ctx32), 1e-4, 1e-5));
}

}  // namespace
}  // namespace pictor::nn
