#pragma once
// Internal interface between image.cpp (format dispatch, files, limits) and the per-format codecs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/image.hpp"

namespace pictor::image_detail {

// Throws the standard "too large" error when w x h exceeds the limits (or is zero).
void check_dimensions(uint64_t width, uint64_t height, const std::string& source, const ImageLimits& limits,
                      const char* format);

Image decode_png(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits);
Image decode_webp(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits);

ImageHeader probe_png(const uint8_t* data, size_t size, const std::string& source);
ImageHeader probe_jpeg(const uint8_t* data, size_t size, const std::string& source);
ImageHeader probe_webp(const uint8_t* data, size_t size, const std::string& source);

TextChunks jpeg_text(const uint8_t* data, size_t size);
TextChunks webp_text(const uint8_t* data, size_t size);

// What Pictor reads from an EXIF (TIFF) block. Every offset is bounds-checked; a malformed block
// yields the defaults rather than an error because EXIF is optional metadata.
struct ExifInfo {
  int orientation = 1;  // tag 0x0112 in IFD0, 1..8
  bool has_user_comment = false;
  std::string user_comment;  // tag 0x9286 in the Exif sub-IFD, decoded to UTF-8
};
// `tiff` points at the TIFF header ("II*\0" or "MM\0*"), i.e. after the "Exif\0\0" prefix.
ExifInfo parse_exif(const uint8_t* tiff, size_t size);
// Same, for an APP1/EXIF chunk payload that may start with "Exif\0\0".
ExifInfo parse_exif_payload(const uint8_t* data, size_t size);

// UTF-16 (big or little endian) and Latin-1 to UTF-8.
std::string utf16_to_utf8(const uint8_t* data, size_t size, bool big_endian);
std::string latin1_to_utf8(const uint8_t* data, size_t size);

}  // namespace pictor::image_detail
