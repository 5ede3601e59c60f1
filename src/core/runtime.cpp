#include "core/runtime.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace pictor {

int default_threads() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

std::string blas_threading() {
  // OpenBLAS exports openblas_get_parallel(): 0 = single-threaded build, 1 = pthreads, 2 = OpenMP.
  using GetParallel = int (*)();
  auto fn = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (!fn) return "not OpenBLAS";
  switch (fn()) {
    case 0: return "OpenBLAS serial";
    case 1: return "OpenBLAS pthreads";
    case 2: return "OpenBLAS OpenMP";
    default: return "OpenBLAS";
  }
}

void set_threads(int n) {
  const int threads = n > 0 ? n : default_threads();
  at::set_num_threads(threads);
  // The pthreads OpenBLAS keeps its own thread pool next to libtorch's OpenMP pool; with more than one
  // thread the two oversubscribe the cores and matrix products run 2-3x slower. Say so once.
  static bool warned = false;
  if (threads > 1 && !warned && blas_threading() == "OpenBLAS pthreads") {
    warned = true;
    std::fprintf(stderr,
                 "pictor: warning: libtorch is using the pthreads build of OpenBLAS, which oversubscribes the "
                 "cores next to libtorch's OpenMP threads (2-3x slower); install libopenblas0-openmp and select "
                 "it (scripts/setup.sh does both)\n");
  }
}

void release_free_heap() {
  malloc_trim(0);
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

std::string models_dir() {
  std::string home = env_or("HOME", "/tmp");
  return env_or("PICTOR_MODELS", home + "/.cache/pictor/models");
}

}  // namespace pictor
