#pragma once
// A small libcurl wrapper for the hub client: one GET with redirects, bounded timeouts, streaming body
// and errors that say what went wrong in words (offline, timeout, HTTP status).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace pictor::hub {

// A failed hub request. `retryable` marks failures that may succeed on a second try (dropped connection,
// stall, 5xx, 429) so downloads can resume instead of giving up.
class HubError : public Error {
 public:
  HubError(const std::string& what, bool retryable, long http_status = 0)
      : Error(what), retryable_(retryable), http_status_(http_status) {}
  bool retryable() const { return retryable_; }
  long http_status() const { return http_status_; }

 private:
  bool retryable_;
  long http_status_;
};

struct HttpSettings {
  std::string token;            // sent as "Authorization: Bearer TOKEN" (never forwarded to other hosts)
  long connect_timeout_s = 15;  // TCP/TLS connection setup
  long low_speed_time_s = 60;   // abort a transfer that stays below low_speed_bytes/s this long...
  long low_speed_bytes = 1;     // ...so a stalled server cannot hang `pictor pull` forever
  std::string hub_endpoint;     // for error messages ("cannot reach the Hugging Face hub at ...")
};

struct HttpResponse {
  long status = 0;
  std::string effective_url;
  // Header names are lower-cased. `headers`: the final response; `chain_headers`: every response of the
  // redirect chain merged (the hub puts X-Linked-Etag on its redirect, not on the CDN's answer).
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> chain_headers;
  std::string body;  // the body of a non-2xx answer (truncated), or of a 2xx one without a sink
  std::string header(const std::string& lower_name) const;
  std::string chain_header(const std::string& lower_name) const;
};

// Receives a 2xx body. on_start runs once before the first byte (status and headers known) and on_data
// for each chunk; either may throw to abort the transfer (the exception propagates out of http_get).
struct BodySink {
  std::function<void(const HttpResponse&)> on_start;
  std::function<void(const char*, size_t)> on_data;
};

// Performs GET url. Transport failures throw HubError (offline message for connection/DNS failures,
// timeout message for stalls); HTTP error statuses do NOT throw: callers map them (they know the repo).
HttpResponse http_get(const std::string& url, const HttpSettings& settings,
                      const std::vector<std::string>& extra_headers = {}, const BodySink* sink = nullptr);

// Percent-encodes a string for a URL path segment; keep_slash leaves '/' as is (file paths).
std::string url_encode(const std::string& s, bool keep_slash);

}  // namespace pictor::hub
