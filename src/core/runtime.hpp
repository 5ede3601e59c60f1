#pragma once
// Process-wide runtime settings: thread count and the compute device.
#include <string>

namespace pictor {

// Sets ATen's intra-op thread count (libtorch starts at 1). n <= 0 picks the number of cores.
void set_threads(int n);
int default_threads();

// Which BLAS libtorch's matrix products run on, e.g. "OpenBLAS OpenMP" (the one to use), "OpenBLAS pthreads".
std::string blas_threading();

// Hands memory the allocator holds but no longer uses back to the system (glibc malloc_trim): tensors
// under glibc's mmap threshold (up to 32 MiB) are carved from the heap and their freed space otherwise
// stays in the process's resident size. Called between pipeline stages.
void release_free_heap();

// Environment lookups with a fallback.
std::string env_or(const char* name, const std::string& fallback);

// Directory holding pulled models: $PICTOR_MODELS, default ~/.cache/pictor/models.
std::string models_dir();

}  // namespace pictor
