// libFuzzer target for what the server parses from untrusted request bodies before any engine runs:
// JSON chat requests (parse_chat_request), base64 and data: URIs, and the session prompt diff. Any
// outcome other than a parsed value or a pictor::Error (which the server turns into a 400) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "serve/base64.hpp"
#include "serve/chat_request.hpp"
#include "storage/prompt_diff.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  auto body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_object()) {
    try {
      auto req = pictor::serve::parse_chat_request(body);
      (void)req.params.dump();
    } catch (const pictor::Error&) {
    }
  }

  if (auto decoded = pictor::serve::base64_decode(text, 1 << 16)) {
    // Whatever decodes must survive a round trip.
    auto again = pictor::serve::base64_decode(pictor::serve::base64_encode(*decoded));
    if (!again || *again != *decoded) __builtin_trap();
  }
  (void)pictor::serve::parse_data_uri(text);

  const size_t half = size / 2;
  try {
    auto diff = pictor::storage::prompt_diff(text.substr(0, half), text.substr(half));
    (void)pictor::storage::prompt_diff_json(diff).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const pictor::Error&) {
  }
  return 0;
}
