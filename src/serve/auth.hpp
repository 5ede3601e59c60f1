#pragma once
// Who may call the server and how often. Keys come from --api-key ("KEY" or "NAME:KEY"); when none are
// configured (only allowed on loopback) every caller is accepted and named by X-Pictor-User. Rate limits
// are a token bucket per caller (key name, or client address on an open server).
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace httplib {
struct Request;
}

namespace pictor::serve {

struct ServerOptions;

class Auth {
 public:
  explicit Auth(const ServerOptions& options);
  bool keys_required() const { return !keys_.empty(); }
  // The caller's name; throws ApiError 401 when keys are required and the request has none or a wrong one.
  std::string authenticate(const httplib::Request& req) const;
  // The caller's name without checking (for handlers after authentication passed).
  std::string identify(const httplib::Request& req) const;
  // Throws ApiError 429 (with Retry-After) when `caller` exceeded the per-minute limit.
  void check_rate(const std::string& caller);

 private:
  struct Key {
    std::string name, secret;
  };
  const Key* find_key(const std::string& presented) const;
  std::vector<Key> keys_;
  int per_minute_ = 0;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last;
  };
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

// The key a request presents: "Authorization: Bearer KEY", "X-Api-Key: KEY", or ?access_token=KEY on
// GET requests (EventSource and <img> cannot send headers). "" when none.
std::string presented_key(const httplib::Request& req);

}  // namespace pictor::serve
