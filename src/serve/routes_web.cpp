// The web page: "/" is index.html, its assets live under "/web/". Files come from the copy embedded at
// build time (cmake/embed_web.cmake) or, with ServerOptions::web_dir, from that folder (handy while
// editing the page: no rebuild needed).
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "serve/http_util.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"
#include "serve/web_assets.hpp"

namespace pictor::serve {
namespace {

// The page loads nothing from elsewhere and runs no inline script.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

// httplib decodes the path before routing, so "%2e%2e" arrives as ".." and is refused by safe_web_path;
// the raw target is checked too so that encoded dots and separators are refused even where they would
// decode to something harmless.
bool has_encoded_dot_or_separator(const std::string& target) {
  std::string lower = target.substr(0, target.find('?'));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* bad : {"%2e", "%2f", "%5c", "%00"}) {
    if (lower.find(bad) != std::string::npos) return true;
  }
  return false;
}

void serve_asset(const ServerContext& ctx, const httplib::Request& req, httplib::Response& res,
                 const std::string& requested) {
  const auto relative = has_encoded_dot_or_separator(req.target) ? std::nullopt : safe_web_path(requested);
  if (!relative) throw ApiError(400, "invalid_request_error", "invalid web asset path", "path", "invalid_path");
  std::string body;
  if (!ctx.options.web_dir.empty()) {
    auto bytes = read_web_file(ctx.options.web_dir, *relative);
    if (!bytes) throw not_found("no web asset \"" + *relative + "\"", "path");
    body = std::move(*bytes);
  } else {
    const WebAsset* asset = find_embedded_web_asset(*relative);
    if (!asset) throw not_found("no web asset \"" + *relative + "\"", "path");
    body.assign(asset->bytes);
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  if (*relative == "index.html") {
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("Referrer-Policy", "no-referrer");
  }
  res.set_content(body, web_content_type(*relative).c_str());
}

}  // namespace

void add_web_routes(httplib::Server& http, ServerContext& ctx) {
  const auto index = [&ctx](const httplib::Request& req, httplib::Response& res) {
    serve_asset(ctx, req, res, "index.html");
  };
  http.Get("/", index);
  http.Get("/index.html", index);
  http.Get(R"(/web/(.*))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    serve_asset(ctx, req, res, req.matches[1].str());
  });
}

}  // namespace pictor::serve
