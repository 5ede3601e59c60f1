#include "storage/ids.hpp"

#include <chrono>
#include <random>

namespace pictor::storage {

std::string new_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix + "_";
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

bool is_valid_id(const std::string& id, const std::string& prefix) {
  if (id.size() != prefix.size() + 25 || id.compare(0, prefix.size(), prefix) != 0 || id[prefix.size()] != '_')
    return false;
  for (size_t i = prefix.size() + 1; i < id.size(); ++i) {
    char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace pictor::storage
