#pragma once
// Reading JSON config files with errors that name the file and the field.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"

namespace pictor {

using json = nlohmann::json;

// Parses a JSON file; throws Error("FILE: ...") when missing or malformed.
json read_json_file(const std::filesystem::path& path);

// Writes `j` pretty-printed (2-space indent, trailing newline), creating parent folders.
void write_json_file(const std::filesystem::path& path, const json& j);

// A JSON object together with the file it came from, so every lookup error can name both.
class JsonConfig {
 public:
  JsonConfig() = default;
  JsonConfig(json j, std::string source) : j_(std::move(j)), source_(std::move(source)) {}
  static JsonConfig load(const std::filesystem::path& path);

  const json& raw() const { return j_; }
  const std::string& source() const { return source_; }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  // Required field: throws "FILE: field 'key' ..." when absent or of the wrong type.
  template <class T>
  T get(const std::string& key) const {
    if (!has(key)) throw Error(source_ + ": missing field '" + key + "'");
    try {
      return j_.at(key).get<T>();
    } catch (const json::exception& e) {
      throw Error(source_ + ": field '" + key + "' has the wrong type (" + e.what() + ")");
    }
  }
  // Optional field with a default (null counts as absent, as in diffusers configs).
  template <class T>
  T get(const std::string& key, const T& fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  // A positive integer field (sizes, counts): required, or with a default; zero or negative fails naming it.
  int64_t positive(const std::string& key) const { return checked_positive(key, get<int64_t>(key)); }
  int64_t positive(const std::string& key, int64_t fallback) const {
    return checked_positive(key, get<int64_t>(key, fallback));
  }
  // Fails naming `key` unless `divisor` (its value) divides `dividend` (the value of `of_key`), e.g.
  // "num_attention_heads: 7 does not divide hidden_size 64".
  void require_divides(const std::string& key, int64_t divisor, const std::string& of_key, int64_t dividend) const {
    if (dividend % divisor != 0)
      fail(key, std::to_string(divisor) + " does not divide " + of_key + " " + std::to_string(dividend));
  }
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw Error(source_ + ": field '" + key + "': " + problem);
  }

 private:
  int64_t checked_positive(const std::string& key, int64_t v) const {
    if (v <= 0) fail(key, "must be positive, got " + std::to_string(v));
    return v;
  }
  json j_ = json::object();
  std::string source_;
};

}  // namespace pictor
