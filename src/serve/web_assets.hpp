#pragma once
// The web page's files (web/ in the source tree), embedded into the binary at build time by
// cmake/embed_web.cmake, and the rules for serving them (content types, safe relative paths) shared by
// the embedded copy and `--web-dir`.
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pictor::serve {

struct WebAsset {
  std::string_view path;   // relative to web/, '/'-separated: "index.html", "app.js"
  std::string_view bytes;  // the file's content
};

// Every embedded file, sorted by path (generated source).
std::span<const WebAsset> embedded_web_assets();
const WebAsset* find_embedded_web_asset(std::string_view path);

// "text/html; charset=utf-8" etc. from the file's extension; application/octet-stream when unknown.
std::string web_content_type(std::string_view path);

// Checks a requested asset path (after URL decoding) and returns it as a relative path, or nullopt when
// it could leave the web folder or is malformed: empty, absolute, "." or ".." segments, empty segments,
// backslashes, control characters, '%' (double encoding) or ':' (drive letters, schemes).
std::optional<std::string> safe_web_path(std::string_view path);

// Reads `relative` (already checked by safe_web_path) under `root`, refusing files that resolve outside
// `root` through symbolic links and anything that is not a regular file; nullopt when refused/missing.
std::optional<std::string> read_web_file(const std::filesystem::path& root, const std::string& relative);

}  // namespace pictor::serve
