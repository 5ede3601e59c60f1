#pragma once
// SHA-256 (FIPS 180-4), used to verify downloads against the hub's LFS checksums. Hand-written so the hub
// client needs no crypto library; it is tested against the standard NIST vectors.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pictor::hub {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Lower-case hex of the digest; finishes the computation (call reset() to reuse the object).
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_{};
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);
// Hashes a whole file; throws pictor::Error when unreadable.
std::string sha256_file(const std::filesystem::path& path);
// Feeds the first `bytes` of `path` into `hasher` (used when resuming a partial download).
void sha256_update_from_file(Sha256& hasher, const std::filesystem::path& path, uint64_t bytes);

// True for a 64-character hexadecimal string (what the hub uses for LFS object ids).
bool is_sha256_hex(std::string_view s);

}  // namespace pictor::hub
