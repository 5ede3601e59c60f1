#include "serve/web_assets.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

namespace pictor::serve {

const WebAsset* find_embedded_web_asset(std::string_view path) {
  for (const WebAsset& asset : embedded_web_assets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

std::string web_content_type(std::string_view path) {
  struct Type {
    std::string_view ext, type;
  };
  static constexpr Type types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  for (const Type& t : types) {
    if (path.size() >= t.ext.size() && path.substr(path.size() - t.ext.size()) == t.ext) return std::string(t.type);
  }
  return "application/octet-stream";
}

std::optional<std::string> safe_web_path(std::string_view path) {
  if (path.empty() || path.size() > 512 || path.front() == '/') return std::nullopt;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    // '%' left after decoding means double encoding ("%252e"); ':' a drive letter or scheme.
    if (u < 0x20 || u == 0x7f || c == '\\' || c == '%' || c == ':') return std::nullopt;
  }
  std::string_view rest = path;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return std::string(path);
}

std::optional<std::string> read_web_file(const std::filesystem::path& root, const std::string& relative) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path file = fs::canonical(base / relative, ec);
  if (ec || !fs::is_regular_file(file, ec)) return std::nullopt;
  // A symbolic link inside the folder may point anywhere: the resolved file must still be under it.
  const auto [root_end, unused] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  (void)unused;
  if (root_end != base.end()) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace pictor::serve
