#pragma once
// Include only from translation units built with OpenMP (see CMakeLists.txt).
//
// Makes BLAS calls on this thread single-threaded for the guard's lifetime. The OpenMP build of OpenBLAS
// takes its thread count from OpenMP and runs single-threaded inside a parallel region, but a call made
// outside one (a lone block, or --threads 1) would otherwise split the work its own way -- and OpenBLAS's
// sgemm rounds differently depending on that split (measured: 7.6e-6 on a 48x64x256 product). Work
// blocks of a fixed shape, each computed by one single-threaded call, give every output element the same
// arithmetic whatever the thread count, so seeds reproduce images on any machine size.
#include <omp.h>

namespace pictor::nn {

class OneBlasThread {
 public:
  OneBlasThread() : saved_(omp_in_parallel() ? 0 : omp_get_max_threads()) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~OneBlasThread() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int saved_;  // 0 inside a parallel region (nothing to change)
};

}  // namespace pictor::nn
