#include "hub/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <memory>
#include <mutex>

namespace pictor::hub {

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

struct Transfer {
  CURL* curl = nullptr;
  const BodySink* sink = nullptr;
  HttpResponse response;
  bool started = false;
  std::exception_ptr error;  // thrown by a sink callback; rethrown after curl returns
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();  // a new response of the redirect chain begins
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    t->response.headers[name] = value;
    t->response.chain_headers[name] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  try {
    if (!t->started) {
      t->started = true;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response.status);
      if (t->sink && t->response.status / 100 == 2 && t->sink->on_start) t->sink->on_start(t->response);
    }
    if (t->sink && t->response.status / 100 == 2) {
      if (t->sink->on_data) t->sink->on_data(data, bytes);
    } else if (t->response.body.size() < kMaxErrorBody || (t->response.status / 100 == 2 && !t->sink)) {
      t->response.body.append(data, bytes);
    }
  } catch (...) {
    t->error = std::current_exception();
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  return bytes;
}

[[noreturn]] void throw_transport_error(CURLcode code, const char* errbuf, const std::string& url,
                                        const HttpSettings& s) {
  std::string detail = (errbuf && *errbuf) ? errbuf : curl_easy_strerror(code);
  std::string hub = s.hub_endpoint.empty() ? url : s.hub_endpoint;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
      throw HubError("cannot reach the Hugging Face hub at " + hub + " (" + detail +
                         "): check your connection, set HF_ENDPOINT, or pass --model DIR",
                     /*retryable=*/false);
    case CURLE_OPERATION_TIMEDOUT:
      throw HubError("the Hugging Face hub at " + hub + " timed out while fetching " + url + " (" + detail +
                         "): the server stalled or the connection is too slow",
                     /*retryable=*/true);
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      throw HubError("connection to " + hub + " dropped while fetching " + url + " (" + detail + ")",
                     /*retryable=*/true);
    case CURLE_PEER_FAILED_VERIFICATION:
      throw HubError("TLS certificate of " + hub + " could not be verified (" + detail + ")", false);
    case CURLE_TOO_MANY_REDIRECTS: throw HubError("too many redirects fetching " + url, false);
    default: throw HubError("request to " + url + " failed (" + detail + ")", false);
  }
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpResponse::chain_header(const std::string& lower_name) const {
  auto it = chain_headers.find(lower_name);
  return it == chain_headers.end() ? std::string() : it->second;
}

HttpResponse http_get(const std::string& url, const HttpSettings& settings,
                      const std::vector<std::string>& extra_headers, const BodySink* sink) {
  global_init_once();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw HubError("libcurl could not be initialised", false);
  Transfer t;
  t.curl = curl.get();
  t.sink = sink;

  curl_slist* raw_headers = nullptr;
  struct SlistGuard {
    curl_slist*& list;
    ~SlistGuard() { curl_slist_free_all(list); }
  } free_headers{raw_headers};
  // curl does not forward a custom Authorization header when a redirect leaves the host, which is what
  // the hub needs: its LFS redirects point at a CDN with presigned URLs that must not get the token.
  if (!settings.token.empty())
    raw_headers = curl_slist_append(raw_headers, ("Authorization: Bearer " + settings.token).c_str());
  for (const auto& h : extra_headers) raw_headers = curl_slist_append(raw_headers, h.c_str());

  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, raw_headers);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "pictor/0.1");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, settings.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, settings.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, settings.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts (no SIGALRM)
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

  CURLcode code = curl_easy_perform(c);
  if (t.error) std::rethrow_exception(t.error);
  if (code != CURLE_OK) throw_transport_error(code, errbuf, url, settings);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.response.status);
  char* effective = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective)
    t.response.effective_url = effective;
  // A 2xx answer with an empty body never reached on_body: let the sink see its start all the same.
  if (!t.started && sink && t.response.status / 100 == 2 && sink->on_start) sink->on_start(t.response);
  return t.response;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace pictor::hub
