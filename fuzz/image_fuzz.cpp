// libFuzzer target for the image decoders (libpng/libjpeg/libwebp paths, EXIF and PNG text parsing)
// and the A1111 infotext parser. Built with clang, ASan and UBSan; no libtorch.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "formats/generation_params.hpp"
#include "formats/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small pixel limit: keeps each run fast while still exercising the limit checks.
  pictor::ImageLimits limits;
  limits.max_pixels = 1u << 20;
  try {
    pictor::Image img = pictor::decode_image(data, size, "fuzz-input", limits);
    if (img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels)) __builtin_trap();
    if (img.width <= 64 && img.height <= 64) (void)pictor::resize_image(img, 7, 5, pictor::ResizeFilter::Lanczos);
  } catch (const pictor::Error&) {
  }
  try {
    (void)pictor::probe_image(data, size, "fuzz-input");
  } catch (const pictor::Error&) {
  }
  try {
    for (const auto& [key, value] : pictor::read_image_text(data, size, "fuzz-input"))
      if (key == "parameters") (void)pictor::format_a1111(pictor::parse_a1111(value));
  } catch (const pictor::Error&) {
  }
  // The infotext parser never throws, whatever the bytes.
  (void)pictor::format_a1111(pictor::parse_a1111(std::string(reinterpret_cast<const char*>(data), size)));
  return 0;
}
