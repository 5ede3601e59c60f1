#pragma once
// Base64 (RFC 4648, standard alphabet) and data: URIs, for images sent inside JSON bodies (OpenAI
// b64_json, AUTOMATIC1111 init_images, chat image_url parts) and returned in responses.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pictor::serve {

std::string base64_encode(const uint8_t* data, size_t size);
inline std::string base64_encode(const std::vector<uint8_t>& bytes) {
  return base64_encode(bytes.data(), bytes.size());
}

// Decodes standard base64; ASCII whitespace is skipped and the trailing '=' padding is optional (both are
// common in hand-made requests). nullopt on any other character or a length that cannot be base64.
// Decoding stops with nullopt as soon as the output would exceed `max_bytes`.
std::optional<std::vector<uint8_t>> base64_decode(const std::string& text, uint64_t max_bytes = UINT64_MAX);

// "data:[<mime>][;base64],<payload>" → the media type and the base64 payload (not yet decoded);
// nullopt when `uri` is not a base64 data: URI.
struct DataUri {
  std::string mime_type;
  std::string payload;
};
std::optional<DataUri> parse_data_uri(const std::string& uri);

}  // namespace pictor::serve
