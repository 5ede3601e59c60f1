#include "serve/base64.hpp"

#include <algorithm>

namespace pictor::serve {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet, which some clients send
  if (c == '/' || c == '_') return 63;
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
}  // namespace

std::string base64_encode(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (size - i == 1) {
    uint32_t v = uint32_t(data[i]) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += "==";
  } else if (size - i == 2) {
    uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += '=';
  }
  return out;
}

std::optional<std::vector<uint8_t>> base64_decode(const std::string& text, uint64_t max_bytes) {
  std::vector<uint8_t> out;
  out.reserve(std::min<uint64_t>(text.size() / 4 * 3 + 3, max_bytes));
  uint32_t acc = 0;
  int bits = 0, digits = 0, padding = 0;
  for (char c : text) {
    if (is_space(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after padding
    int v = sextet(c);
    if (v < 0) return std::nullopt;
    ++digits;
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out.size() >= max_bytes) return std::nullopt;
      out.push_back(uint8_t(acc >> bits & 0xff));
    }
  }
  // A lone final digit carries fewer than 8 bits: no base64 encoder produces that.
  if (digits % 4 == 1 || padding > 2) return std::nullopt;
  if (padding > 0 && (digits + padding) % 4 != 0) return std::nullopt;
  return out;
}

std::optional<DataUri> parse_data_uri(const std::string& uri) {
  if (uri.compare(0, 5, "data:") != 0) return std::nullopt;
  size_t comma = uri.find(',');
  if (comma == std::string::npos) return std::nullopt;
  std::string meta = uri.substr(5, comma - 5);
  const std::string marker = ";base64";
  if (meta.size() < marker.size() || meta.compare(meta.size() - marker.size(), marker.size(), marker) != 0)
    return std::nullopt;
  DataUri d;
  d.mime_type = meta.substr(0, meta.size() - marker.size());
  d.payload = uri.substr(comma + 1);
  return d;
}

}  // namespace pictor::serve
