// WebP through libwebp (which reports errors by return value, no longjmp), plus a RIFF walker for the
// EXIF chunk (orientation and AUTOMATIC1111's UserComment).
#include <webp/decode.h>
#include <webp/encode.h>

#include <cstring>

#include "core/error.hpp"
#include "formats/image_codecs.hpp"

namespace pictor {
namespace {

const char* status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "file is truncated";
  }
  return "unknown error";
}

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The payload of the first RIFF chunk named `fourcc` (nullptr when absent).
const uint8_t* find_riff_chunk(const uint8_t* data, size_t size, const char* fourcc, size_t* length) {
  size_t pos = 12;
  while (size >= 8 && pos <= size - 8) {
    size_t len = le32(data + pos + 4);
    if (len > size - pos - 8) return nullptr;
    if (std::memcmp(data + pos, fourcc, 4) == 0) {
      *length = len;
      return data + pos + 8;
    }
    pos += 8 + len + (len & 1);
  }
  return nullptr;
}

image_detail::ExifInfo webp_exif(const uint8_t* data, size_t size) {
  size_t len = 0;
  const uint8_t* exif = find_riff_chunk(data, size, "EXIF", &len);
  return exif ? image_detail::parse_exif_payload(exif, len) : image_detail::ExifInfo{};
}

struct WebpBuffer {
  uint8_t* data = nullptr;
  ~WebpBuffer() { WebPFree(data); }
};

}  // namespace

namespace image_detail {

ImageHeader probe_webp(const uint8_t* data, size_t size, const std::string& source) {
  int w = 0, h = 0;
  if (!WebPGetInfo(data, size, &w, &h)) throw Error("image '" + source + "': invalid WebP header");
  return ImageHeader{ImageFormat::Webp, w, h};
}

Image decode_webp(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  VP8StatusCode st = WebPGetFeatures(data, size, &features);
  if (st != VP8_STATUS_OK) throw Error("image '" + source + "': invalid WebP: " + status_text(st));
  if (features.has_animation) throw Error("image '" + source + "': animated WebP is not supported");
  // Before any pixel memory: a tiny file may claim an enormous size.
  check_dimensions(uint64_t(features.width), uint64_t(features.height), source, limits, "WebP");
  Image image(features.width, features.height, features.has_alpha ? 4 : 3);
  const int stride = features.width * image.channels;
  uint8_t* ok = image.channels == 4 ? WebPDecodeRGBAInto(data, size, image.pixels.data(), image.pixels.size(), stride)
                                    : WebPDecodeRGBInto(data, size, image.pixels.data(), image.pixels.size(), stride);
  if (!ok) throw Error("image '" + source + "': invalid WebP: decoding failed (corrupt or truncated data)");
  // Like diffusers' load_image (PIL.ImageOps.exif_transpose), honour an EXIF orientation.
  int orientation = webp_exif(data, size).orientation;
  return orientation == 1 ? image : apply_exif_orientation(image, orientation);
}

TextChunks webp_text(const uint8_t* data, size_t size) {
  TextChunks out;
  ExifInfo exif = webp_exif(data, size);
  if (exif.has_user_comment) out.emplace_back("parameters", exif.user_comment);
  return out;
}

}  // namespace image_detail

std::vector<uint8_t> encode_webp(const Image& image, int quality, bool lossless) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 3 && image.channels != 4) ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * size_t(image.channels))
    throw Error("cannot encode WebP: image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                "x" + std::to_string(image.channels) + " with " + std::to_string(image.pixels.size()) + " bytes");
  if (image.width > WEBP_MAX_DIMENSION || image.height > WEBP_MAX_DIMENSION)
    throw Error("cannot encode WebP: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " is over the format's " + std::to_string(WEBP_MAX_DIMENSION) + " pixel limit");
  if (quality < 0 || quality > 100) throw Error("WebP quality " + std::to_string(quality) + " is not in 0..100");
  const int stride = image.width * image.channels;
  if (!lossless) {
    WebpBuffer out;
    const float q = float(quality);
    size_t n = image.channels == 4
                   ? WebPEncodeRGBA(image.pixels.data(), image.width, image.height, stride, q, &out.data)
                   : WebPEncodeRGB(image.pixels.data(), image.width, image.height, stride, q, &out.data);
    if (n == 0 || !out.data) throw Error("WebP encoding failed");
    return std::vector<uint8_t>(out.data, out.data + n);
  }
  // Lossless through the advanced API: `exact` keeps the RGB of fully transparent pixels, which the
  // simple API would overwrite, so a lossless round trip gives back exactly the input.
  WebPConfig config;
  if (!WebPConfigInit(&config)) throw Error("WebP encoding failed: libwebp version mismatch");
  config.lossless = 1;
  config.exact = 1;
  config.quality = float(quality);
  WebPPicture picture;
  if (!WebPPictureInit(&picture)) throw Error("WebP encoding failed: libwebp version mismatch");
  picture.use_argb = 1;
  picture.width = image.width;
  picture.height = image.height;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  const int imported = image.channels == 4 ? WebPPictureImportRGBA(&picture, image.pixels.data(), stride)
                                           : WebPPictureImportRGB(&picture, image.pixels.data(), stride);
  const int ok = imported && WebPEncode(&config, &picture);
  std::vector<uint8_t> bytes;
  if (ok) bytes.assign(writer.mem, writer.mem + writer.size);
  WebPPictureFree(&picture);
  WebPMemoryWriterClear(&writer);
  if (!ok) throw Error("WebP lossless encoding failed (libwebp error " + std::to_string(int(picture.error_code)) + ")");
  return bytes;
}

}  // namespace pictor
