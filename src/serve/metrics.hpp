#pragma once
// /metrics in the Prometheus text format: HTTP requests by route family and status (counted here), plus
// the queue's and the model cache's figures, read when scraped.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace pictor::serve {

struct ServerContext;

class Metrics {
 public:
  void count_request(const std::string& path, int status);
  std::string render(ServerContext& ctx);

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route family, status) → count
};

// "/v1/images/generations" → "/v1/images"; ids never become label values (unbounded cardinality).
std::string route_family(const std::string& path);

}  // namespace pictor::serve
