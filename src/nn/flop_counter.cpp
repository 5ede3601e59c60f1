#include "nn/flop_counter.hpp"

#include <atomic>

namespace pictor::nn {

namespace {
std::atomic<bool> g_enabled{false};
std::atomic<double> g_flops{0.0};
}  // namespace

void FlopCounter::start() {
  g_flops = 0.0;
  g_enabled = true;
}

double FlopCounter::stop() {
  g_enabled = false;
  return g_flops.load();
}

bool FlopCounter::enabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

void FlopCounter::add(double flops) {
  double cur = g_flops.load(std::memory_order_relaxed);
  while (!g_flops.compare_exchange_weak(cur, cur + flops, std::memory_order_relaxed)) {
  }
}

}  // namespace pictor::nn
