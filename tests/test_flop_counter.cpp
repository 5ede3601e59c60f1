// The FLOP counter behind the benchmarks' efficiency figures counts each heavy op exactly once.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "nn/attention.hpp"
#include "nn/conv_prepack.hpp"
#include "nn/flop_counter.hpp"
#include "nn/layers.hpp"

using namespace pictor::nn;

TEST(FlopCounter, CountsConvLinearAndAttention) {
  RandomParams p(1);
  Conv2d conv(p, "c", 8, 16, 3, 1, 1);
  Linear lin(p, "l", 32, 24);
  at::Tensor x = at::randn({2, 8, 10, 12});
  FlopCounter::start();
  conv(x);
  EXPECT_DOUBLE_EQ(FlopCounter::stop(), 2.0 * (2 * 16 * 10 * 12) * (8 * 3 * 3));
  FlopCounter::start();
  lin(at::randn({3, 5, 32}));
  EXPECT_DOUBLE_EQ(FlopCounter::stop(), 2.0 * 15 * 32 * 24);
  FlopCounter::start();
  attention(at::randn({2, 4, 6, 8}), at::randn({2, 4, 7, 8}), at::randn({2, 4, 7, 8}));
  EXPECT_DOUBLE_EQ(FlopCounter::stop(), 2.0 * 8 * 6 * 7 * 16);
  {
    c10::InferenceMode guard;
    PrepackedConv2d packed(conv);
    FlopCounter::start();
    packed(x);
    packed(x);
    EXPECT_DOUBLE_EQ(FlopCounter::stop(), 2 * 2.0 * (2 * 16 * 10 * 12) * (8 * 3 * 3));
  }
  FlopCounter::start();
  conv(x);
  FlopCounter::stop();
  FlopCounter::start();  // restarting resets
  EXPECT_DOUBLE_EQ(FlopCounter::stop(), 0.0);
}
