// Process runtime: the BLAS libtorch runs on, thread settings.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "core/runtime.hpp"

namespace pictor {
namespace {

// scripts/setup.sh selects the OpenMP build of OpenBLAS; the pthreads build oversubscribes the cores next
// to libtorch's OpenMP pool and the reference BLAS is 35-80x slower. A machine set up without that step
// fails here rather than silently running 2-3x slower.
TEST(Runtime, MatrixProductsRunOnOpenMpOpenBlas) {
  EXPECT_EQ(blas_threading(), "OpenBLAS OpenMP");
}

TEST(Runtime, SetThreadsDefaultsToTheCoreCount) {
  set_threads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  set_threads(0);
  EXPECT_EQ(at::get_num_threads(), default_threads());
}

}  // namespace
}  // namespace pictor
