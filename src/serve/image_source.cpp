#include "serve/image_source.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "formats/image.hpp"
#include "serve/api_error.hpp"
#include "serve/base64.hpp"

namespace pictor::serve {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxRedirects = 3;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool starts_with_ci(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// A URL shortened for error messages (data URIs and long query strings are not worth echoing).
std::string shown(const std::string& url) {
  return url.size() <= 120 ? url : url.substr(0, 117) + "...";
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1 << 20));
  return buf;
}

ApiError too_large(const std::string& param, uint64_t max_bytes) {
  return invalid_param(
      param,
      "the image is larger than the server's limit of " + mib(max_bytes) + " (" + std::to_string(max_bytes) + " bytes)",
      "image_too_large");
}

// ---- addresses ----

bool ipv4_non_public(const uint8_t a[4]) {
  const uint32_t v = (uint32_t(a[0]) << 24) | (uint32_t(a[1]) << 16) | (uint32_t(a[2]) << 8) | a[3];
  auto in = [&](uint32_t net, int bits) { return bits == 0 || (v >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8)      // 0.0.0.0/8 "this network" (0.0.0.0 reaches the host itself)
         || in(0x0A000000, 8)   // 10/8 private
         || in(0x64400000, 10)  // 100.64/10 shared address space (carrier NAT)
         || in(0x7F000000, 8)   // 127/8 loopback
         || in(0xA9FE0000, 16)  // 169.254/16 link-local (cloud metadata services live here)
         || in(0xAC100000, 12)  // 172.16/12 private
         || in(0xC0000000, 24)  // 192.0.0/24 protocol assignments
         || in(0xC0000200, 24)  // 192.0.2/24 documentation
         || in(0xC0A80000, 16)  // 192.168/16 private
         || in(0xC6120000, 15)  // 198.18/15 benchmarking
         || in(0xC6336400, 24)  // 198.51.100/24 documentation
         || in(0xCB007100, 24)  // 203.0.113/24 documentation
         || in(0xE0000000, 4)   // 224/4 multicast
         || in(0xF0000000, 4);  // 240/4 reserved, 255.255.255.255 broadcast
}

bool ipv6_non_public(const uint8_t a[16]) {
  auto zeros = [&](int from, int to) { return std::all_of(a + from, a + to, [](uint8_t b) { return b == 0; }); };
  if (zeros(0, 16)) return true;                                                       // :: unspecified
  if (zeros(0, 15) && a[15] == 1) return true;                                         // ::1 loopback
  if (zeros(0, 10) && a[10] == 0xff && a[11] == 0xff) return ipv4_non_public(a + 12);  // ::ffff:a.b.c.d mapped
  if (zeros(0, 12)) return ipv4_non_public(a + 12);                                    // ::a.b.c.d compatible
  if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && zeros(4, 12))
    return ipv4_non_public(a + 12);                                               // 64:ff9b::/96 NAT64
  if (a[0] == 0x20 && a[1] == 0x02) return ipv4_non_public(a + 2);                // 2002::/16 6to4
  if ((a[0] & 0xfe) == 0xfc) return true;                                         // fc00::/7 unique local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;                         // fe80::/10 link-local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return true;                         // fec0::/10 site-local
  if (a[0] == 0xff) return true;                                                  // ff00::/8 multicast
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return true;  // 2001:db8::/32 documentation
  if (a[0] == 0x01 && zeros(1, 8)) return true;                                   // 100::/64 discard
  return false;
}

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

// ---- http(s) ----

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct UrlParts {
  std::string scheme, host, port;
};

UrlParts split_url(const std::string& url, const std::string& param) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw invalid_param(param, "'" + shown(url) + "' is not a valid URL", "invalid_url");
  UrlParts p;
  auto part = [&](CURLUPart what, unsigned flags) {
    char* s = nullptr;
    std::string out;
    if (curl_url_get(u.get(), what, &s, flags) == CURLUE_OK && s) out = s;
    curl_free(s);
    return out;
  };
  p.scheme = lower(part(CURLUPART_SCHEME, 0));
  p.host = part(CURLUPART_HOST, 0);
  p.port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (p.scheme != "http" && p.scheme != "https")
    throw invalid_param(param,
                        "image URL scheme '" + p.scheme + "' is not supported (use https://, http:// or a data: URI)",
                        "invalid_url");
  if (p.host.empty()) throw invalid_param(param, "image URL '" + shown(url) + "' names no host", "invalid_url");
  if (!part(CURLUPART_USER, 0).empty() || !part(CURLUPART_PASSWORD, 0).empty())
    throw invalid_param(param, "image URLs with user names or passwords are not fetched", "invalid_url");
  return p;
}

// Resolves `host` and returns the address to connect to, refusing non-public ones unless allowed. All
// addresses are checked (not only the first): a name that also resolves to a private address is refused.
std::string pick_address(const UrlParts& u, const ServerOptions& options, const std::string& param) {
  std::string host = u.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), u.port.c_str(), &hints, &res);
  if (rc != 0 || !res)
    throw invalid_param(param, "cannot resolve the image URL's host '" + host + "': " + gai_strerror(rc),
                        "url_unreachable");
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, &freeaddrinfo);
  std::string chosen;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    const std::string ip = address_text(ai->ai_addr);
    if (!options.allow_private_urls && is_non_public_address(ip))
      throw invalid_param(param,
                          "image URL host '" + host + "' resolves to " + ip +
                              ", a loopback/private/link-local address; the server does not fetch those "
                              "(an operator can allow it with --allow-private-urls)",
                          "url_not_allowed");
    if (chosen.empty()) chosen = ip;
  }
  if (chosen.empty())
    throw invalid_param(param, "the image URL's host '" + host + "' has no address", "url_unreachable");
  return chosen;
}

struct Download {
  std::vector<uint8_t> body;
  uint64_t limit = 0;
  bool over_limit = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t bytes = size * n;
  if (d->body.size() + bytes > d->limit) {
    d->over_limit = true;
    return 0;  // aborts the transfer: nothing past the limit is read
  }
  d->body.insert(d->body.end(), data, data + bytes);
  return bytes;
}

std::vector<uint8_t> fetch_url(std::string url, const ServerOptions& options, const std::string& param) {
  curl_init_once();
  for (int hop = 0;; ++hop) {
    const UrlParts u = split_url(url, param);
    const std::string ip = pick_address(u, options, param);
    // Pins host:port to the checked address so curl does no lookup of its own (an IPv6 URL host keeps
    // its brackets, as curl matches it).
    const std::string pin = u.host + ":" + u.port + ":" + (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip);

    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) throw ApiError(500, "server_error", "cannot start an HTTP transfer");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve(curl_slist_append(nullptr, pin.c_str()),
                                                                        &curl_slist_free_all);
    Download d;
    d.limit = options.max_image_bytes;
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve.get());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are followed here, each one checked
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");        // a proxy would do its own (unchecked) lookup
    curl_easy_setopt(c, CURLOPT_TIMEOUT, long(std::max(1, options.url_timeout_s)));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, long(std::max(1, options.url_timeout_s)));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(options.max_image_bytes));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pictor-serve");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // sizes are checked on the decoded body
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    const CURLcode rc = curl_easy_perform(c);
    if (d.over_limit || rc == CURLE_FILESIZE_EXCEEDED) throw too_large(param, options.max_image_bytes);
    if (rc == CURLE_OPERATION_TIMEDOUT)
      throw invalid_param(param,
                          "fetching the image URL '" + shown(url) + "' took longer than " +
                              std::to_string(options.url_timeout_s) + " s",
                          "url_timeout");
    if (rc != CURLE_OK)
      throw invalid_param(param,
                          "cannot fetch the image URL '" + shown(url) +
                              "': " + (*errbuf ? std::string(errbuf) : curl_easy_strerror(rc)),
                          "url_unreachable");
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300 && status < 400) {
      char* location = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
      if (!location) throw invalid_param(param, "the image URL redirected without a Location", "url_unreachable");
      if (hop >= kMaxRedirects)
        throw invalid_param(param, "the image URL redirected more than " + std::to_string(kMaxRedirects) + " times",
                            "url_unreachable");
      url = location;
      continue;
    }
    if (status < 200 || status >= 300)
      throw invalid_param(param, "fetching the image URL '" + shown(url) + "' returned HTTP " + std::to_string(status),
                          "url_unreachable");
    return std::move(d.body);
  }
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(uint8_t(s[i + 1])) && std::isxdigit(uint8_t(s[i + 2]))) {
      out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool is_inside(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator of the folder
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

}  // namespace

std::vector<uint8_t> decode_data_uri(const std::string& uri, uint64_t max_bytes, const std::string& param) {
  const size_t comma = uri.find(',');
  if (!starts_with_ci(uri, "data:") || comma == std::string::npos)
    throw invalid_param(param, "not a data URI (expected data:image/<type>;base64,<data>)", "invalid_image");
  const std::string header = lower(uri.substr(5, comma - 5));
  if (header.rfind("image/", 0) != 0)
    throw invalid_param(param, "data URI media type '" + header.substr(0, header.find(';')) + "' is not an image/ type",
                        "invalid_image");
  if (header.size() < 7 || header.compare(header.size() - 7, 7, ";base64") != 0)
    throw invalid_param(param, "data URI images must be base64-encoded (data:image/<type>;base64,<data>)",
                        "invalid_image");
  const size_t encoded = uri.size() - comma - 1;
  if (encoded / 4 * 3 > max_bytes + 3) throw too_large(param, max_bytes);

  auto decoded = base64_decode(uri.substr(comma + 1), max_bytes + 3);
  if (!decoded) throw invalid_param(param, "the data URI's base64 data is invalid or truncated", "invalid_image");
  std::vector<uint8_t> out = std::move(*decoded);
  if (out.size() > max_bytes) throw too_large(param, max_bytes);
  if (out.empty()) throw invalid_param(param, "the data URI holds no data", "invalid_image");
  return out;
}

bool is_non_public_address(const std::string& ip) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return ipv4_non_public(buf);
  std::string v6 = ip;
  if (const size_t zone = v6.find('%'); zone != std::string::npos) v6.resize(zone);  // fe80::1%eth0
  if (v6.size() > 2 && v6.front() == '[' && v6.back() == ']') v6 = v6.substr(1, v6.size() - 2);
  if (inet_pton(AF_INET6, v6.c_str(), buf) == 1) return ipv6_non_public(buf);
  return true;
}

fs::path resolve_local_image_path(const std::string& url, const fs::path& dir, const std::string& param) {
  if (dir.empty())
    throw ApiError(403, "permission_error",
                   "local image paths are not allowed on this server (an operator can allow a folder with "
                   "--local-files); send the image as a data: URI or an https:// URL",
                   param, "local_files_disabled");
  std::string raw = url;
  if (starts_with_ci(raw, "file://")) {
    raw = percent_decode(raw.substr(7));
    // file://localhost/path is the same as file:///path; other hosts are not local files.
    if (starts_with_ci(raw, "localhost/")) raw = raw.substr(9);
    if (raw.empty() || raw[0] != '/')
      throw invalid_param(param, "file URLs must be file:///absolute/path", "invalid_url");
  }
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw ApiError(500, "server_error", "the local files folder '" + dir.string() + "' is not accessible");
  const fs::path requested = fs::path(raw).is_absolute() ? fs::path(raw) : root / raw;
  const fs::path real = fs::weakly_canonical(requested, ec);
  if (ec || !is_inside(real, root))
    throw ApiError(403, "permission_error",
                   "the image path '" + shown(raw) + "' is outside the server's local files folder", param,
                   "path_not_allowed");
  if (!fs::is_regular_file(real, ec))
    throw invalid_param(param, "no image file '" + shown(raw) + "' in the server's local files folder", "not_found");
  return real;
}

std::vector<uint8_t> read_image_source(const std::string& url, const ServerOptions& options, const std::string& param) {
  if (url.empty()) throw invalid_param(param, "the image URL is empty", "invalid_url");
  if (starts_with_ci(url, "data:")) return decode_data_uri(url, options.max_image_bytes, param);
  if (starts_with_ci(url, "http://") || starts_with_ci(url, "https://")) return fetch_url(url, options, param);
  const size_t scheme = url.find("://");
  if (scheme != std::string::npos && !starts_with_ci(url, "file://"))
    throw invalid_param(
        param,
        "image URL scheme '" + url.substr(0, scheme) + "' is not supported (use https://, http:// or a data: URI)",
        "invalid_url");
  const fs::path path = resolve_local_image_path(url, options.local_files_dir, param);
  ImageLimits limits;
  limits.max_bytes = options.max_image_bytes;
  try {
    return read_file_bytes(path, limits);
  } catch (const Error& e) {
    throw invalid_param(param, e.what(), "invalid_image");
  }
}

storage::StoredImage store_image_source(storage::ImageStore& store, const std::string& url,
                                        const ServerOptions& options, const std::string& param) {
  const std::vector<uint8_t> bytes = read_image_source(url, options, param);
  ImageLimits limits;
  limits.max_bytes = options.max_image_bytes;
  limits.max_pixels = options.max_image_pixels;
  Image image;
  try {
    // Decoding (not only probing) proves the bytes are a usable image before a job is queued on them.
    image = decode_image(bytes.data(), bytes.size(), param, limits);
  } catch (const Error& e) {
    throw invalid_param(param, std::string("not a usable image: ") + e.what(), "invalid_image");
  }
  return store.put(bytes, image.width, image.height, {{"source", "chat"}});
}

}  // namespace pictor::serve
