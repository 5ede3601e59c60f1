#pragma once
// Process-wide runtime settings: thread count and the compute device.
#include <string>

namespace pictor {

// Sets ATen's intra-op thread count (libtorch starts at 1). n <= 0 picks the number of cores.
void set_threads(int n);
int default_threads();

// Which BLAS libtorch's matrix products run on, e.g. "OpenBLAS OpenMP" (the one to use), "OpenBLAS pthreads".
std::string blas_threading();

// Environment lookups with a fallback.
std::string env_or(const char* name, const std::string& fallback);

// Directory holding pulled models: $PICTOR_MODELS, default ~/.cache/pictor/models.
std::string models_dir();

}  // namespace pictor
