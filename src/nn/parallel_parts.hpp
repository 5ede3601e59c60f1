#pragma once
// Include only from translation units built with OpenMP (see CMakeLists.txt): at::parallel_for forks
// only there.
//
// Runs fn(part) for every part in [0, n) on the intra-op threads, each thread taking the next part not yet
// started. at::parallel_for hands each thread a fixed range up front, so one slow thread (a core shared
// with another process, the normal case on a VM) holds up the join while the others spin; taken one at a
// time, the slow thread simply does fewer parts. Which thread runs a part does not change its arithmetic,
// so results stay the same on any thread count. Inside a parallel region it runs on the calling thread.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace pictor::nn {

template <class Fn>
void parallel_parts(int64_t n, const Fn& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, std::min<int64_t>(n, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    c10::InferenceMode guard(inference);  // thread-local: the worker threads need it too
    for (int64_t part = next.fetch_add(1); part < n; part = next.fetch_add(1)) fn(part);
  });
}

}  // namespace pictor::nn
