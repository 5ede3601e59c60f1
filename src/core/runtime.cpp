#include "core/runtime.hpp"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdlib>

namespace pictor {

int default_threads() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_threads(int n) {
  at::set_num_threads(n > 0 ? n : default_threads());
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
