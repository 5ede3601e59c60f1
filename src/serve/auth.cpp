#include "serve/auth.hpp"

#include <httplib.h>

#include <algorithm>

#include "serve/api_error.hpp"
#include "serve/server_options.hpp"

namespace pictor::serve {

namespace {

// Compares without an early exit so response timing does not reveal how much of a key matched.
bool constant_time_equal(const std::string& a, const std::string& b) {
  if (b.empty()) return a.empty();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % b.size()]);
  return diff == 0;
}

bool valid_user_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ' ' || c == '@';
  });
}

}  // namespace

std::string presented_key(const httplib::Request& req) {
  std::string auth = req.get_header_value("Authorization");
  if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0))
    return auth.substr(7);
  std::string key = req.get_header_value("X-Api-Key");
  if (!key.empty()) return key;
  if (req.method == "GET" && req.has_param("access_token")) return req.get_param_value("access_token");
  return "";
}

Auth::Auth(const ServerOptions& options) : per_minute_(options.rate_limit_per_minute) {
  for (size_t i = 0; i < options.api_keys.size(); ++i) {
    const auto& k = options.api_keys[i];
    auto colon = k.find(':');
    Key key;
    if (colon != std::string::npos && colon > 0) {
      key.name = k.substr(0, colon);
      key.secret = k.substr(colon + 1);
    } else {
      key.name = "key" + std::to_string(i + 1);
      key.secret = k;
    }
    if (key.secret.size() < 8)
      throw ApiError(500, "server_error", "--api-key values must be at least 8 characters (key " + key.name + ")");
    keys_.push_back(key);
  }
}

const Auth::Key* Auth::find_key(const std::string& presented) const {
  const Key* found = nullptr;
  for (const auto& k : keys_)
    if (constant_time_equal(presented, k.secret)) found = &k;
  return found;
}

std::string Auth::authenticate(const httplib::Request& req) const {
  if (keys_.empty()) return identify(req);
  std::string presented = presented_key(req);
  if (presented.empty())
    throw ApiError(401, "authentication_error", "this server requires an API key: send \"Authorization: Bearer KEY\"",
                   "", "missing_api_key");
  if (!find_key(presented))
    throw ApiError(401, "authentication_error", "incorrect API key provided", "", "invalid_api_key");
  return identify(req);
}

std::string Auth::identify(const httplib::Request& req) const {
  if (!keys_.empty()) {
    const Key* k = find_key(presented_key(req));
    return k ? k->name : "anonymous";
  }
  std::string user = req.get_header_value("X-Pictor-User");
  return valid_user_name(user) ? user : "anonymous";
}

void Auth::check_rate(const std::string& caller) {
  if (per_minute_ <= 0) return;
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = buckets_.try_emplace(caller);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = per_minute_;
  } else {
    double refill = std::chrono::duration<double>(now - b.last).count() * per_minute_ / 60.0;
    b.tokens = std::min<double>(per_minute_, b.tokens + refill);
  }
  b.last = now;
  if (b.tokens < 1) {
    ApiError e(429, "rate_limit_error",
               "rate limit reached for " + caller + ": " + std::to_string(per_minute_) + " requests per minute", "",
               "rate_limit_exceeded");
    e.retry_after_s = std::max(1, int((1 - b.tokens) * 60.0 / per_minute_ + 0.999));
    throw e;
  }
  b.tokens -= 1;
}

}  // namespace pictor::serve
