#pragma once
// Measurement helpers shared by the benchmarks: wall time, best-of timing, peak RSS and the machine's
// fp32 GEMM throughput (the yardstick every efficiency ratio divides by).
#include <ATen/ATen.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace pictor::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Peak resident set size of this process so far.
inline double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is KiB on Linux
}

// Best of several runs of fn (after one warm-up).
template <class F>
double best_time(int reps, F&& fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t = Clock::now();
    fn();
    best = std::min(best, seconds_since(t));
  }
  return best;
}

// fp32 GEMM throughput: 2048^3 matrix product, best of 5.
inline double gemm_gflops() {
  const int64_t n = 2048;
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n}), c = at::empty({n, n});
  const double t = best_time(5, [&] { at::mm_out(c, a, b); });
  return 2.0 * double(n) * n * n / t / 1e9;
}

}  // namespace pictor::bench
